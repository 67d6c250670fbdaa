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
    spawn_server(listener, ready);
    Ok(())
}

fn spawn_server(listener: TcpListener, ready: Arc<AtomicBool>) {
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                continue;
            };
            let ready = ready.load(Ordering::Relaxed);
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let mut used = 0;
                // Read the whole head, not only the request line: closing a socket with
                // unread input makes the kernel answer with a reset, which can discard the
                // response before the prober reads it.
                while used < buf.len() && !buf[..used].windows(4).any(|w| w == b"\r\n\r\n") {
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
                // Whatever the client still sends (a body, an over-long head) is read and
                // dropped until it closes, for the same reason; a client that never closes
                // is given a second.
                let drain = async {
                    while let Ok(n) = conn.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                };
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drain).await;
            });
        }
    });
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

    /// A prober whose head arrives in pieces still reads the whole answer: the server must
    /// not answer and close while part of the request is unread.
    #[test]
    fn a_head_sent_in_pieces_gets_its_whole_answer() {
        use std::io::{Read, Write};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let got = rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            spawn_server(listener, Arc::new(AtomicBool::new(false)));
            tokio::task::spawn_blocking(move || {
                let pause = std::time::Duration::from_millis(200);
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                c.write_all(b"GET /readyz HTTP/1.1\r\n").unwrap();
                std::thread::sleep(pause);
                c.write_all(b"Host: x\r\n").unwrap();
                std::thread::sleep(pause);
                c.write_all(b"\r\n").unwrap();
                std::thread::sleep(pause);
                let mut out = String::new();
                c.read_to_string(&mut out).map(|_| out)
            })
            .await
            .unwrap()
        });
        let got = got.expect("the answer was lost");
        assert!(got.starts_with("HTTP/1.1 503 "), "{got}");
        assert!(got.ends_with("\r\n\r\nflanneld is not ready yet"), "{got}");
    }
}
