//! The etcd v3 side of flanneld, with upstream's key layout so weft and upstream flanneld can share
//! one etcd:
//!
//! ```text
//! <prefix>/config                      the network config (JSON, written by the operator)
//! <prefix>/subnets/10.5.34.0-24        one lease per host (JSON LeaseAttrs), attached to a 24 h
//! <prefix>/subnets/10.5.34.0-24&fc00:0:0:22::-64     etcd lease; the dual-stack form
//! ```
//!
//! etcd-client reconnects unary calls by itself, but a watch stream that breaks stays broken, and
//! nothing retries: the loops here track the last revision, re-watch from it with backoff, re-list
//! after a compaction, and retry a lost create race instead of giving up as upstream does.

use anyhow::{bail, Context, Result};
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Identity,
    PutOptions, TlsOptions, Txn, TxnOp, WatchOptions,
};
use std::time::Duration;

use super::alloc::{choose_v4, choose_v6, random_index};
use super::backoff::Backoff;
use super::config::NetworkConfig;
use super::env::PreviousEnv;
use super::lease::{Lease, LeaseAttrs, LeaseKey};
use super::manager::{LeaseEvent, OwnLease, Permanent, SubnetManager};

/// Lease TTL upstream uses: 24 hours.
pub const LEASE_TTL: Duration = Duration::from_secs(24 * 3600);
/// Attempts at claiming a subnet when other hosts keep winning the race.
const ACQUIRE_ATTEMPTS: usize = 10;

/// How to reach etcd: flanneld's -etcd-* flags.
#[derive(Debug, Clone, Default)]
pub struct EtcdOptions {
    pub endpoints: Vec<String>,
    pub prefix: String,
    pub keyfile: String,
    pub certfile: String,
    pub cafile: String,
    pub username: String,
    pub password: String,
}

/// The flannel keys in one etcd.
#[derive(Clone)]
pub struct Registry {
    client: Client,
    prefix: String,
    /// TLS without a client certificate, see [`explain`].
    without_client_cert: bool,
}

fn tls_options(o: &EtcdOptions) -> Result<Option<TlsOptions>> {
    let mut tls = None;
    if !o.cafile.is_empty() {
        let pem = std::fs::read(&o.cafile)
            .with_context(|| format!("failed to read -etcd-cafile {}", o.cafile))?;
        tls = Some(TlsOptions::new().ca_certificate(Certificate::from_pem(pem)));
    }
    match (o.certfile.is_empty(), o.keyfile.is_empty()) {
        (true, true) => {}
        (false, false) => {
            let cert = std::fs::read(&o.certfile)
                .with_context(|| format!("failed to read -etcd-certfile {}", o.certfile))?;
            let key = std::fs::read(&o.keyfile)
                .with_context(|| format!("failed to read -etcd-keyfile {}", o.keyfile))?;
            tls = Some(
                tls.unwrap_or_default()
                    .identity(Identity::from_pem(cert, key)),
            );
        }
        _ => bail!("-etcd-certfile and -etcd-keyfile must be given together"),
    }
    Ok(tls)
}

/// etcd started with --client-cert-auth drops a TLS client that shows no certificate, and over
/// TLS 1.3 the client learns it only when the connection goes away: a BadCertificate or
/// CertificateRequired alert at best, often just a broken pipe or "connection closed". When we have
/// no certificate to show, say what such an error most likely means.
fn explain(e: etcd_client::Error, without_client_cert: bool) -> anyhow::Error {
    let text = e.to_string().to_lowercase();
    let cut = [
        "badcertificate",
        "certificaterequired",
        "broken pipe",
        "connection closed",
        "connection reset",
    ]
    .iter()
    .any(|s| text.contains(s));
    let e = anyhow::Error::new(e);
    if without_client_cert && cut {
        e.context(
            "etcd closed the TLS connection, most likely because it requires a client certificate \
             (etcd --client-cert-auth) and none was given (-etcd-certfile and -etcd-keyfile)",
        )
    } else {
        e
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl SubnetManager for Registry {
    fn network_config(&self) -> impl std::future::Future<Output = Result<NetworkConfig>> + Send {
        Registry::network_config(self)
    }

    fn acquire(
        &self,
        cfg: &NetworkConfig,
        attrs: &LeaseAttrs,
        prev: &PreviousEnv,
        may_take: &(dyn Fn(&Lease) -> Result<()> + Sync),
    ) -> impl std::future::Future<Output = Result<OwnLease>> + Send {
        Registry::acquire(self, cfg, attrs, prev, may_take)
    }

    fn renew(&self, own: &mut OwnLease) -> impl std::future::Future<Output = Result<()>> + Send {
        Registry::renew(self, own)
    }

    fn follow_leases(
        &self,
        tx: std::sync::mpsc::Sender<LeaseEvent>,
        own: &OwnLease,
    ) -> impl std::future::Future<Output = ()> + Send {
        Registry::follow_leases(self, tx, own)
    }
}

impl Registry {
    /// Builds the client. With a user and password this authenticates, so it fails while etcd is
    /// unreachable; callers retry.
    pub async fn connect(o: &EtcdOptions) -> Result<Registry> {
        let mut opts = ConnectOptions::new()
            .with_require_leader(true)
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        if !o.username.is_empty() {
            opts = opts
                .with_user(o.username.clone(), o.password.clone())
                .with_auto_token_refresh(true);
        }
        let mut tls = tls_options(o)?;
        // As upstream, the scheme decides: http:// is plaintext even with TLS files given
        // (etcd-client would refuse the combination). One client cannot do both, though.
        let plain = o
            .endpoints
            .iter()
            .filter(|e| e.starts_with("http://"))
            .count();
        if tls.is_some() && plain > 0 {
            if plain < o.endpoints.len() {
                bail!("the etcd endpoints mix http:// and https:// while TLS files are given: use one scheme");
            }
            log::warn!("the etcd endpoints are http://, so the TLS files are not used: the connection is plaintext (use https:// endpoints for TLS)");
            tls = None;
        }
        let without_client_cert = o.certfile.is_empty()
            && (tls.is_some() || o.endpoints.iter().any(|e| e.starts_with("https://")));
        if let Some(tls) = tls {
            opts = opts.with_tls(tls);
        } else if o.endpoints.iter().any(|e| e.starts_with("https://")) {
            log::warn!("https endpoint without -etcd-cafile: the server certificate cannot be verified against a CA weft knows");
        }
        let client = Client::connect(&o.endpoints, Some(opts))
            .await
            .map_err(|e| explain(e, without_client_cert))
            .with_context(|| format!("failed to connect to etcd at {}", o.endpoints.join(",")))?;
        Ok(Registry {
            client,
            prefix: o.prefix.trim_end_matches('/').to_string(),
            without_client_cert,
        })
    }

    fn config_key(&self) -> String {
        format!("{}/config", self.prefix)
    }

    fn subnets_prefix(&self) -> String {
        format!("{}/subnets", self.prefix)
    }

    /// The full etcd key of a lease.
    pub fn lease_key(&self, k: &LeaseKey) -> String {
        format!("{}/subnets/{}", self.prefix, k.to_key())
    }

    /// Reads and validates `<prefix>/config`.
    pub async fn network_config(&self) -> Result<NetworkConfig> {
        let key = self.config_key();
        let resp = self
            .client
            .kv_client()
            .get(key.clone(), None)
            .await
            .map_err(|e| explain(e, self.without_client_cert))
            .with_context(|| format!("failed to read {key} from etcd"))?;
        let Some(kv) = resp.kvs().first() else {
            bail!(
                "flannel config not found in etcd at {key}. Did you create it with the etcd v3 API \
                 (ETCDCTL_API=3 etcdctl put {key} '{{\"Network\":\"10.5.0.0/16\",\"Backend\":{{\"Type\":\"vxlan\"}}}}')? \
                 Keys written with the v2 API (etcdctl set) are invisible to v3 clients"
            );
        };
        NetworkConfig::parse(&text(kv.value()))
            .with_context(|| format!("invalid network config at {key}"))
    }

    /// Every lease, and the revision the listing was taken at. Keys or values that do not parse
    /// are logged and skipped.
    pub async fn list_leases(&self) -> Result<(Vec<Lease>, i64)> {
        let prefix = self.subnets_prefix();
        let resp = self
            .client
            .kv_client()
            .get(prefix.clone(), Some(GetOptions::new().with_prefix()))
            .await
            .with_context(|| format!("failed to list leases under {prefix}"))?;
        let rev = resp.header().map_or(0, |h| h.revision());
        let leases = resp
            .kvs()
            .iter()
            .filter_map(|kv| parse_kv(&text(kv.key()), kv.value(), kv.lease()))
            .collect();
        Ok((leases, rev))
    }

    async fn put_lease(&self, key: &LeaseKey, attrs: &LeaseAttrs, lease: i64) -> Result<()> {
        let opts = (lease != 0).then(|| PutOptions::new().with_lease(lease));
        self.client
            .kv_client()
            .put(self.lease_key(key), attrs.to_json(), opts)
            .await
            .with_context(|| format!("failed to write lease {}", key.to_key()))?;
        Ok(())
    }

    async fn grant(&self) -> Result<i64> {
        let r = self
            .client
            .lease_client()
            .grant(LEASE_TTL.as_secs() as i64, None)
            .await
            .context("failed to grant an etcd lease")?;
        Ok(r.id())
    }

    async fn revoke(&self, id: i64) {
        if id != 0 {
            if let Err(e) = self.client.lease_client().revoke(id).await {
                log::debug!("revoking etcd lease {id:x}: {e}");
            }
        }
    }

    /// Claims a subnet for `attrs`: our own lease again (same PublicIP) if `may_take` allows,
    /// else the one in the previous subnet.env if it is free, else a random free one; a lost
    /// race is retried.
    pub async fn acquire(
        &self,
        cfg: &NetworkConfig,
        attrs: &LeaseAttrs,
        prev: &PreviousEnv,
        may_take: impl Fn(&Lease) -> Result<()>,
    ) -> Result<OwnLease> {
        for attempt in 1..=ACQUIRE_ATTEMPTS {
            let (leases, _) = self.list_leases().await?;
            if let Some(mine) = leases.iter().find(|l| l.attrs.public_ip == attrs.public_ip) {
                if cfg.fits_v4(mine.key.ipv4) && cfg.fits_v6(mine.key.ipv6) {
                    may_take(mine)?;
                    return self.reuse(mine, attrs).await;
                }
                log::info!(
                    "our old lease {} does not fit the network config; deleting it",
                    mine.key.to_key()
                );
                self.client
                    .kv_client()
                    .delete(self.lease_key(&mine.key), None)
                    .await
                    .context("failed to delete the old lease")?;
                continue;
            }
            let key = match self.previous_if_free(cfg, prev, &leases) {
                Some(k) => k,
                None => self.choose_free(cfg, &leases)?,
            };
            match self.create(&key, attrs).await? {
                Some(own) => return Ok(own),
                None => log::info!(
                    "subnet {} was claimed by another host meanwhile (attempt {attempt}/{ACQUIRE_ATTEMPTS}); choosing again",
                    key.to_key()
                ),
            }
        }
        bail!("failed to acquire a subnet lease: lost the race {ACQUIRE_ATTEMPTS} times")
    }

    async fn reuse(&self, mine: &Lease, attrs: &LeaseAttrs) -> Result<OwnLease> {
        if mine.is_reservation() {
            // A key with no TTL is an operator's reservation: keep it one.
            self.put_lease(&mine.key, attrs, 0).await?;
            log::info!("using reserved subnet {}", mine.key.to_key());
            return Ok(OwnLease {
                key: mine.key,
                attrs: attrs.clone(),
                lease_id: 0,
                expires: None,
            });
        }
        let id = self.grant().await?;
        if let Err(e) = self.put_lease(&mine.key, attrs, id).await {
            self.revoke(id).await;
            return Err(e);
        }
        self.revoke(mine.etcd_lease).await;
        log::info!("found our lease {} again; renewed it", mine.key.to_key());
        Ok(OwnLease {
            key: mine.key,
            attrs: attrs.clone(),
            lease_id: id,
            expires: Some(std::time::Instant::now() + LEASE_TTL),
        })
    }

    fn previous_if_free(
        &self,
        cfg: &NetworkConfig,
        prev: &PreviousEnv,
        leases: &[Lease],
    ) -> Option<LeaseKey> {
        let v4 = prev.subnet?;
        let v6 = if cfg.enable_ipv6 {
            Some(prev.ipv6_subnet?)
        } else {
            None
        };
        let key = LeaseKey::new(v4, v6);
        let taken = leases.iter().any(|l| {
            l.key.ipv4 == v4 || (v6.is_some() && l.key.ipv6.is_some() && l.key.ipv6 == v6)
        });
        (!taken && cfg.fits_v4(v4) && cfg.fits_v6(v6)).then_some(key)
    }

    fn choose_free(&self, cfg: &NetworkConfig, leases: &[Lease]) -> Result<LeaseKey> {
        let taken4: Vec<_> = leases.iter().map(|l| l.key.ipv4).collect();
        let v4 = choose_v4(cfg, &taken4, &mut random_index).ok_or_else(|| {
            Permanent(format!(
                "out of subnets: every /{} between {} and {} is leased",
                cfg.subnet_len, cfg.subnet_min, cfg.subnet_max
            ))
        })?;
        let v6 = if cfg.enable_ipv6 {
            let taken6: Vec<_> = leases.iter().filter_map(|l| l.key.ipv6).collect();
            Some(
                choose_v6(cfg, &taken6, &mut random_index)
                    .ok_or_else(|| Permanent("out of IPv6 subnets".into()))?,
            )
        } else {
            None
        };
        Ok(LeaseKey::new(v4, v6))
    }

    /// Creates the key only if it does not exist; `None` when another host has it.
    async fn create(&self, key: &LeaseKey, attrs: &LeaseAttrs) -> Result<Option<OwnLease>> {
        let id = self.grant().await?;
        let k = self.lease_key(key);
        let txn = Txn::new()
            .when([Compare::version(k.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                k,
                attrs.to_json(),
                Some(PutOptions::new().with_lease(id)),
            )]);
        let resp = match self.client.kv_client().txn(txn).await {
            Ok(r) => r,
            Err(e) => {
                self.revoke(id).await;
                return Err(e).with_context(|| format!("failed to create lease {}", key.to_key()));
            }
        };
        if !resp.succeeded() {
            self.revoke(id).await;
            return Ok(None);
        }
        log::info!("acquired lease {}", key.to_key());
        Ok(Some(OwnLease {
            key: *key,
            attrs: attrs.clone(),
            lease_id: id,
            expires: Some(std::time::Instant::now() + LEASE_TTL),
        }))
    }

    /// Renews `own` as upstream does: a fresh 24 h etcd lease and the key put again with it; the
    /// old etcd lease, now holding no key, is revoked.
    pub async fn renew(&self, own: &mut OwnLease) -> Result<()> {
        if own.lease_id == 0 {
            return Ok(());
        }
        let id = self.grant().await?;
        if let Err(e) = self.put_lease(&own.key, &own.attrs, id).await {
            self.revoke(id).await;
            return Err(e);
        }
        self.revoke(own.lease_id).await;
        own.lease_id = id;
        own.expires = Some(std::time::Instant::now() + LEASE_TTL);
        Ok(())
    }

    /// Writes `own` again after etcd lost it: created if its key is free; put over a value
    /// with our PublicIP (our own, from an older backup); left alone when it names another
    /// host, whose lease the next listing then reports as taken (and the daemon stops).
    async fn reassert(&self, own: &OwnLease) -> Result<()> {
        let k = self.lease_key(&own.key);
        let resp = self
            .client
            .kv_client()
            .get(k.clone(), None)
            .await
            .with_context(|| format!("failed to read {k}"))?;
        // The value there and the revision it was written at, which guards the put below.
        let theirs = resp.kvs().first().and_then(|kv| {
            parse_kv(&text(kv.key()), kv.value(), kv.lease()).map(|l| (l, kv.mod_revision()))
        });
        let id = match &theirs {
            Some((l, _)) if l.attrs == own.attrs => return Ok(()),
            Some((l, _)) if l.attrs.public_ip != own.attrs.public_ip => return Ok(()),
            _ if own.lease_id == 0 => 0,
            _ => self.grant().await?,
        };
        // Created only if still free (a new host may be claiming it this very moment), else
        // put over our own older value.
        let opts = (id != 0).then(|| PutOptions::new().with_lease(id));
        let put = TxnOp::put(k.clone(), own.attrs.to_json(), opts);
        let guard = match &theirs {
            None => Compare::version(k.clone(), CompareOp::Equal, 0),
            Some((_, rev)) => Compare::mod_revision(k.clone(), CompareOp::Equal, *rev),
        };
        let done = self
            .client
            .kv_client()
            .txn(Txn::new().when([guard]).and_then([put]))
            .await
            .map(|r| r.succeeded())
            .with_context(|| format!("failed to write {k}"));
        match done {
            Ok(true) => {
                log::info!("wrote our lease {} again", own.key.to_key());
                Ok(())
            }
            Ok(false) => {
                // Changed meanwhile: whoever wrote it, the listing that follows says what it is.
                self.revoke(id).await;
                Ok(())
            }
            Err(e) => {
                self.revoke(id).await;
                Err(e)
            }
        }
    }

    /// Lists the leases, sends them as a snapshot, then follows every change under
    /// `<prefix>/subnets` forever: a broken stream is re-opened from the last revision seen (with
    /// backoff), a compaction triggers a fresh snapshot. An etcd whose revision went back (wiped,
    /// or restored from an older backup) would leave a watch waiting for a revision that comes
    /// much later, if ever: then `own` is written again (as `reassert` says) and the
    /// leases listed afresh. Returns only when `tx` is closed.
    pub async fn follow_leases(&self, tx: std::sync::mpsc::Sender<LeaseEvent>, own: &OwnLease) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut from = None;
        loop {
            let rev = match from {
                Some(rev) => rev,
                None => match self.list_leases().await {
                    Ok((leases, rev)) => {
                        if tx.send(LeaseEvent::Snapshot(leases)).is_err() {
                            return;
                        }
                        rev + 1
                    }
                    Err(e) => {
                        log::warn!("{e:#}; retrying");
                        tokio::time::sleep(backoff.next_delay()).await;
                        continue;
                    }
                },
            };
            match self.watch_from(rev, &tx, &mut backoff).await {
                WatchEnd::Closed => return,
                WatchEnd::Compacted => {
                    log::info!("watch revision {rev} was compacted; listing the leases again");
                    from = None;
                }
                WatchEnd::WentBack(now) => {
                    log::warn!(
                        "etcd is at revision {now}, behind the revision {} this watch has seen: \
                         etcd was wiped or restored from an older backup; writing our lease \
                         again and listing the leases afresh",
                        rev - 1
                    );
                    while let Err(e) = self.reassert(own).await {
                        let d = backoff.next_delay();
                        log::warn!("{e:#}; retrying in {d:?}");
                        tokio::time::sleep(d).await;
                    }
                    from = None;
                }
                WatchEnd::TokenRefused(next, e) => {
                    // etcd refuses a new watch whose auth token expired or is unknown (a restart
                    // forgets every simple token) by canceling it, which etcd-client does not
                    // take as a reason to authenticate again: do it here.
                    from = Some(next);
                    log::warn!("lease watch refused ({e}); authenticating again");
                    if let Err(e) = self.client.refresh_token().await {
                        log::warn!("failed to authenticate to etcd: {e}");
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                WatchEnd::Broken(next, e) => {
                    from = Some(next);
                    let d = backoff.next_delay();
                    log::warn!("lease watch broke ({e}); resuming from revision {next} in {d:?}");
                    tokio::time::sleep(d).await;
                }
            }
        }
    }

    async fn watch_from(
        &self,
        rev: i64,
        tx: &std::sync::mpsc::Sender<LeaseEvent>,
        backoff: &mut Backoff,
    ) -> WatchEnd {
        let opts = WatchOptions::new().with_prefix().with_start_revision(rev);
        let mut stream = match self
            .client
            .watch_client()
            .watch(self.subnets_prefix(), Some(opts))
            .await
        {
            Ok(s) => s,
            Err(e) => return WatchEnd::Broken(rev, e.to_string()),
        };
        let mut next = rev;
        loop {
            let resp = match stream.message().await {
                Ok(Some(r)) => r,
                Ok(None) => return WatchEnd::Broken(next, "stream closed".into()),
                Err(e) => return WatchEnd::Broken(next, e.to_string()),
            };
            if resp.compact_revision() != 0 {
                return WatchEnd::Compacted;
            }
            // The store never goes back by itself: a header behind what was already seen is
            // another etcd's history.
            if let Some(h) = resp.header() {
                if h.revision() + 1 < rev {
                    return WatchEnd::WentBack(h.revision());
                }
            }
            if resp.canceled() {
                if resp.cancel_reason().contains("compacted") {
                    return WatchEnd::Compacted;
                }
                let why = format!("canceled: {}", resp.cancel_reason());
                if resp.cancel_reason().contains("invalid auth token") {
                    return WatchEnd::TokenRefused(next, why);
                }
                return WatchEnd::Broken(next, why);
            }
            backoff.reset();
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                let key = text(kv.key());
                let event = match ev.event_type() {
                    EventType::Put => parse_kv(&key, kv.value(), kv.lease()).map(LeaseEvent::Added),
                    EventType::Delete => match LeaseKey::parse(&key) {
                        Some(k) => Some(LeaseEvent::Removed(k)),
                        None => {
                            log::warn!("ignoring the deletion of {key:?}: not a subnet key");
                            None
                        }
                    },
                };
                if let Some(event) = event {
                    if tx.send(event).is_err() {
                        return WatchEnd::Closed;
                    }
                }
                next = next.max(kv.mod_revision() + 1);
            }
            if let Some(h) = resp.header() {
                next = next.max(h.revision() + 1);
            }
        }
    }
}

enum WatchEnd {
    Closed,
    Compacted,
    /// etcd's revision is behind the one the watch resumed from.
    WentBack(i64),
    /// Canceled by etcd for an expired or unknown auth token.
    TokenRefused(i64, String),
    Broken(i64, String),
}

/// A lease from a key and value; `None` (logged) when either does not parse.
fn parse_kv(key: &str, value: &[u8], etcd_lease: i64) -> Option<Lease> {
    let Some(k) = LeaseKey::parse(key) else {
        log::warn!("ignoring {key:?}: not a subnet key");
        return None;
    };
    match LeaseAttrs::parse(&text(value)) {
        Ok(attrs) => Some(Lease {
            key: k,
            attrs,
            etcd_lease,
        }),
        Err(e) => {
            log::warn!("ignoring lease {key:?}: {e:#}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let got: Vec<_> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 100);
    }

    #[test]
    fn a_cut_tls_connection_without_a_client_cert_gets_a_hint() {
        let err = |m: &str| etcd_client::Error::InvalidArgs(m.into());
        let hint = "requires a client certificate";
        let cut = "hyper::Error(Io, Custom { kind: BrokenPipe, error: \"stream closed because of a broken pipe\" })";
        assert!(format!("{:#}", explain(err(cut), true)).contains(hint));
        assert!(format!(
            "{:#}",
            explain(err("received fatal alert: BadCertificate"), true)
        )
        .contains(hint));
        assert!(!format!("{:#}", explain(err(cut), false)).contains(hint));
        assert!(!format!(
            "{:#}",
            explain(err("tcp connect error: Connection refused"), true)
        )
        .contains(hint));
    }

    #[test]
    fn bad_keys_and_values_are_skipped() {
        assert!(parse_kv("/p/subnets/10.0.1.0-24", br#"{"PublicIP":"1.2.3.4"}"#, 7).is_some());
        assert!(parse_kv("/p/subnets/garbage", br#"{"PublicIP":"1.2.3.4"}"#, 7).is_none());
        assert!(parse_kv("/p/subnets/10.0.1.0-24", b"not json", 7).is_none());
    }
}
