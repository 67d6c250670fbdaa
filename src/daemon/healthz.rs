//! `/healthz` (the process is up) and `/readyz` (subnet.env written, rules installed), with
//! upstream's bodies, over a minimal HTTP/1 responder: one request per connection.

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The status line and body for a request line's path.
pub fn answer(path: &str, ready: bool) -> (u16, &'static str) {
    match path {
        "/healthz" => (200, "flanneld is running"),
        "/readyz" if ready => (200, "flanneld is ready"),
        "/readyz" => (503, "flanneld is not ready yet"),
        _ => (404, "404 page not found"),
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        503 => "Service Unavailable",
        _ => "Not Found",
    }
}

/// Binds now (so a port in use fails the start) and serves in the background.
pub async fn serve(addr: SocketAddr, ready: Arc<AtomicBool>) -> Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("failed to listen for health checks on {addr}"))?;
    log::info!("serving /healthz and /readyz on {addr}");
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                continue;
            };
            let ready = ready.load(Ordering::Relaxed);
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let mut used = 0;
                // Read up to the end of the request line; the rest is irrelevant.
                while used < buf.len() && !buf[..used].contains(&b'\n') {
                    match conn.read(&mut buf[used..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => used += n,
                    }
                }
                let line = String::from_utf8_lossy(&buf[..used]);
                let path = line.split_whitespace().nth(1).unwrap_or("/");
                let path = path.split('?').next().unwrap_or(path);
                let (code, body) = answer(path, ready);
                let resp = format!(
                    "HTTP/1.1 {code} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    reason(code),
                    body.len()
                );
                let _ = conn.write_all(resp.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_like_upstream() {
        assert_eq!(answer("/healthz", false), (200, "flanneld is running"));
        assert_eq!(answer("/readyz", false), (503, "flanneld is not ready yet"));
        assert_eq!(answer("/readyz", true), (200, "flanneld is ready"));
        assert_eq!(answer("/metrics", true).0, 404);
    }
}
