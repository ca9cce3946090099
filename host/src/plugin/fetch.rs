//! HTTP(S) inputs, downloaded by the host before any byte reaches a
//! component (FEATURES.md HTTP-01..10, LOG-11).
//!
//! One GET per hop, with `ureq` over rustls (ring; the system trust store
//! through the platform verifier; TLS verification always on):
//!
//! 1. **SSRF guard** (off only with `RECOTEM_HTTP_ALLOW_PRIVATE`): the host
//!    name is resolved by recotem itself and **every** address it resolves
//!    to must be public — see [`refused_range`] for the ranges refused. A
//!    name that resolves to nothing is refused too.
//! 2. **Pinned connection**: the request connects to the first vetted
//!    address (the `Host` header and TLS SNI keep the name), so a second DNS
//!    answer cannot swap in another address (DNS rebinding). Redo per hop.
//! 3. **Redirects by hand**: 301/302/303/307/308 are followed up to
//!    [`MAX_REDIRECTS`] times (the 6th is refused: the project decision D13
//!    overrides upstream's "at most 4"); refused when the `Location` is
//!    missing, not http(s), changes the scheme of the original URL (neither
//!    https→http nor http→https), carries `user:password@`, or was already
//!    visited. Each hop followed is logged as `<prefix>_redirect`.
//! 4. **Status** ≥ 400 is a failure; other non-2xx answers too.
//! 5. **Timeout** `RECOTEM_HTTP_TIMEOUT_SECONDS` for the name lookup, the
//!    connect, and each read or write (a slow but steady body is not cut).
//! 6. **Size**: the body is streamed in 1 MiB chunks and abandoned as soon as
//!    it passes `RECOTEM_MAX_DOWNLOAD_BYTES` (`<prefix>_size_exceeded`).
//! 7. **sha256 pin** (mandatory for http(s), checked at recipe load): the
//!    digest of the bytes as served is compared in constant time; a mismatch
//!    names only the first 8 hex digits of each digest.
//!
//! Every failure is [`Error::http_fetch`] (exit 7). URLs in messages and
//! events have their userinfo replaced by `***`.
//!
//! **Spooling**: the body goes to an anonymous temporary file (created in
//! the system temporary directory and unlinked at once, so nothing is left
//! behind even after a crash), at most the cap in size, and the component
//! gets it only after the pin matched — as a stream with `read-at`, exactly
//! like a local file (gzip still detected by its magic bytes). Memory use
//! stays at one chunk whatever the size of the download.
//!
//! Proxies (`HTTP(S)_PROXY`) are **not** used: a proxy resolves the name
//! itself, which would defeat the pinned, vetted connection.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use sha2::{Digest, Sha256};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use url::Url;

use crate::error::{Error, Result};
use crate::events::Event;

/// Most redirects followed; one more is refused.
pub const MAX_REDIRECTS: u32 = 5;
/// Bytes read from the body at a time.
const CHUNK: usize = 1 << 20;
/// The `User-Agent` sent.
const USER_AGENT: &str = concat!("recotem/", env!("CARGO_PKG_VERSION"));

/// One download, as the grant broker asks for it.
#[derive(Debug, Clone)]
pub struct Fetch<'a> {
    /// The URL from the recipe.
    pub url: &'a str,
    /// The recipe's pin: 64 lower-case hex digits.
    pub sha256: &'a str,
    /// Event prefix: `<type>_source` for the data, `metadata_source` for
    /// item metadata.
    pub prefix: &'a str,
    /// What to call it in messages (`source.path https://host/x`).
    pub label: &'a str,
    /// The guard, timeout and cap in force.
    pub limits: Limits,
}

/// The settings a download obeys.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `RECOTEM_MAX_DOWNLOAD_BYTES`.
    pub max_bytes: u64,
    /// `RECOTEM_HTTP_TIMEOUT_SECONDS`.
    pub timeout: Duration,
    /// `RECOTEM_HTTP_ALLOW_PRIVATE`.
    pub allow_private: bool,
}

impl Limits {
    /// The limits of this process's settings.
    pub fn from_settings() -> Self {
        let s = crate::settings::get();
        Limits { max_bytes: s.max_download_bytes, timeout: s.http_timeout, allow_private: s.http_allow_private }
    }
}

/// A verified download: an anonymous temporary file, rewound.
#[derive(Debug)]
pub struct Downloaded {
    /// The body, positioned at its start.
    pub file: File,
    /// Its size in bytes.
    pub bytes: u64,
}

/// `raw` with any `user:password@` replaced by `***@`, for messages and
/// events.
pub fn shown(raw: &str) -> String {
    if let Ok(mut url) = Url::parse(raw) {
        if url.username().is_empty() && url.password().is_none() {
            return url.to_string();
        }
        if url.set_password(None).is_ok() && url.set_username("***").is_ok() {
            return url.to_string();
        }
    }
    // Not a URL the parser accepts: cut the authority's userinfo by hand.
    let Some((scheme, rest)) = raw.split_once("://") else { return raw.to_string() };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => raw.to_string(),
    }
}

/// Download `fetch.url` through the guard, following redirects, into a
/// spooled file whose sha256 matched the pin.
pub fn download(fetch: &Fetch<'_>) -> Result<Downloaded> {
    let label = fetch.label;
    let mut url = parse(fetch.url, label)?;
    let scheme = url.scheme().to_string();
    let mut visited = vec![url.as_str().to_string()];
    let mut redirects = 0u32;
    loop {
        let addr = vet(&url, label, fetch.limits)?;
        let response = get(&url, addr, label, fetch.limits)?;
        let status = response.status().as_u16();
        match status {
            301 | 302 | 303 | 307 | 308 => {
                let next = redirect_target(&url, &response, &scheme, &visited, redirects, label)?;
                Event::info(format!("{}_redirect", fetch.prefix))
                    .field("from_", shown(url.as_str()))
                    .field("to", shown(next.as_str()))
                    .field("status", status)
                    .emit();
                redirects += 1;
                visited.push(next.as_str().to_string());
                url = next;
            }
            200..=299 => return receive(response, fetch, &url),
            s if s >= 400 => {
                return Err(Error::http_fetch(format!(
                    "{label}: the server answered HTTP {s} for {}; check the URL and that the file is still published there",
                    shown(url.as_str())
                )));
            }
            s => {
                return Err(Error::http_fetch(format!(
                    "{label}: the server answered HTTP {s} for {}, which is neither a body nor a redirect recotem follows",
                    shown(url.as_str())
                )));
            }
        }
    }
}

/// The SSRF guard alone, without a request: what `recotem validate` runs
/// for an http(s) input (HTTP-09).
pub fn check_destination(raw: &str, label: &str, limits: Limits) -> Result<()> {
    let url = parse(raw, label)?;
    vet(&url, label, limits).map(|_| ())
}

fn parse(raw: &str, label: &str) -> Result<Url> {
    let url = Url::parse(raw).map_err(|e| Error::http_fetch(format!("{label}: not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::http_fetch(format!("{label}: only http:// and https:// URLs are downloaded")));
    }
    Ok(url)
}

/// Resolve `url`'s host and apply the guard to every address. Returns the
/// address to connect to.
fn vet(url: &Url, label: &str, limits: Limits) -> Result<SocketAddr> {
    let host = url.host().ok_or_else(|| Error::http_fetch(format!("{label}: the URL names no host")))?;
    let port = url.port_or_known_default().unwrap_or(if url.scheme() == "https" { 443 } else { 80 });
    let name = host.to_string();
    let addrs: Vec<IpAddr> = match host {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        url::Host::Domain(domain) => lookup(domain, port, limits.timeout)
            .map_err(|why| Error::http_fetch(format!("{label}: cannot resolve {name}: {why}")))?,
    };
    let Some(&first) = addrs.first() else {
        return Err(Error::http_fetch(format!("{label}: {name} resolves to no address")));
    };
    if !limits.allow_private {
        for ip in &addrs {
            if let Some(range) = refused_range(*ip) {
                return Err(Error::http_fetch(format!(
                    "{label}: refused by the SSRF guard: {name} resolves to {ip}, a {range} address; \
                     recotem downloads only from public addresses (on a trusted network, set RECOTEM_HTTP_ALLOW_PRIVATE=1)"
                )));
            }
        }
    }
    Ok(SocketAddr::new(first, port))
}

/// Look a name up, giving up after `timeout`.
fn lookup(domain: &str, port: u16, timeout: Duration) -> std::result::Result<Vec<IpAddr>, String> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let target = (domain.to_string(), port);
    std::thread::spawn(move || {
        let _ = tx.send(target.to_socket_addrs().map(|it| it.map(|a| a.ip()).collect::<Vec<_>>()));
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("the name lookup did not answer within {} s (RECOTEM_HTTP_TIMEOUT_SECONDS)", timeout.as_secs())),
    }
}

/// Why `ip` is refused by the SSRF guard, or `None` for a public address.
///
/// Refused: unspecified, loopback, private (RFC 1918), link-local
/// (169.254/16, with the cloud metadata address; fe80::/10), shared/CGNAT
/// (100.64/10), IETF protocol assignments (192.0.0/24, 2001::/23),
/// documentation (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32),
/// benchmarking (198.18/15), multicast, reserved (240/4 with broadcast,
/// 0/8, and every IPv6 address outside 2000::/3), unique-local (fc00::/7),
/// NAT64 (64:ff9b::/96, 64:ff9b:1::/48). IPv4-mapped IPv6 (`::ffff:a.b.c.d`)
/// and 6to4 (2002::/16) addresses are judged by the IPv4 address inside.
pub fn refused_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => v6_range(v6),
    }
}

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() => "unspecified",
        (0, _, _) => "reserved (\"this network\", 0.0.0.0/8)",
        (127, _, _) => "loopback",
        (10, _, _) => "private (RFC 1918)",
        (172, 16..=31, _) => "private (RFC 1918)",
        (192, 168, _) => "private (RFC 1918)",
        (169, 254, 169) if ip.octets()[3] == 254 => "link-local (cloud metadata service)",
        (169, 254, _) => "link-local",
        (100, 64..=127, _) => "shared (carrier-grade NAT, 100.64.0.0/10)",
        (192, 0, 0) => "IETF protocol assignment (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation (TEST-NET)",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved (240.0.0.0/4, broadcast)",
        _ => return None,
    })
}

fn v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_range(v4);
    }
    let s = ip.segments();
    Some(match s {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => "NAT64 (64:ff9b::/96)",
        [0x64, 0xff9b, 1, ..] => "NAT64 local use (64:ff9b:1::/48)",
        [0x2001, 0x0db8, ..] => "documentation (2001:db8::/32)",
        [0x2001, 0..=0x01ff, ..] => "IETF protocol assignment (2001::/23)",
        [0x2002, hi, lo, ..] => {
            let [a, b] = hi.to_be_bytes();
            let [c, d] = lo.to_be_bytes();
            return v4_range(Ipv4Addr::new(a, b, c, d)).map(|_| "6to4 (2002::/16) wrapping a refused IPv4");
        }
        [first, ..] if first & 0xff00 == 0xff00 => "multicast",
        [first, ..] if first & 0xfe00 == 0xfc00 => "unique-local (fc00::/7)",
        [first, ..] if first & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        [first, ..] if first & 0xe000 != 0x2000 => "reserved (outside 2000::/3)",
        _ => return None,
    })
}

/// A resolver that answers the one address the guard vetted, whatever the
/// URL says: the connection goes there, the name stays in `Host` and SNI.
#[derive(Debug)]
struct Pinned(SocketAddr);

impl Resolver for Pinned {
    fn resolve(
        &self,
        _uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> std::result::Result<ResolvedSocketAddrs, ureq::Error> {
        let mut out = self.empty();
        out.push(self.0);
        Ok(out)
    }
}

/// One GET of `url`, connected to `addr`, redirects not followed, any
/// status returned.
fn get(url: &Url, addr: SocketAddr, label: &str, limits: Limits) -> Result<ureq::http::Response<ureq::Body>> {
    use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
    let t = Some(limits.timeout);
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .https_only(false)
        .user_agent(USER_AGENT)
        .accept("*/*")
        .tls_config(TlsConfig::builder().provider(TlsProvider::Rustls).root_certs(RootCerts::PlatformVerifier).build())
        .timeout_resolve(t)
        .timeout_connect(t)
        .timeout_per_read(t)
        .timeout_per_write(t)
        .max_idle_connections(0)
        .build();
    let agent = ureq::Agent::with_parts(config, DefaultConnector::default(), Pinned(addr));
    agent.get(url.as_str()).call().map_err(|e| {
        Error::http_fetch(format!("{label}: GET {} failed: {}", shown(url.as_str()), describe(&e, limits.timeout)))
    })
}

/// A ureq failure in words, naming the timeout setting when it was one.
fn describe(e: &ureq::Error, timeout: Duration) -> String {
    match e {
        ureq::Error::Timeout(what) => timed_out(&what.to_string(), timeout),
        ureq::Error::Io(io) if matches!(io.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
            timed_out("read", timeout)
        }
        other => other.to_string(),
    }
}

fn timed_out(what: &str, timeout: Duration) -> String {
    format!("timed out ({what}) after {} s (RECOTEM_HTTP_TIMEOUT_SECONDS)", timeout.as_secs())
}

/// Where a redirect leads, if it may be followed.
fn redirect_target(
    from: &Url,
    response: &ureq::http::Response<ureq::Body>,
    scheme: &str,
    visited: &[String],
    followed: u32,
    label: &str,
) -> Result<Url> {
    let refuse = |why: String| Error::http_fetch(format!("{label}: redirect refused: {why}"));
    let status = response.status().as_u16();
    if followed >= MAX_REDIRECTS {
        return Err(refuse(format!(
            "{} redirects were followed already and at most {MAX_REDIRECTS} are (HTTP {status} from {})",
            followed,
            shown(from.as_str())
        )));
    }
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| refuse(format!("HTTP {status} from {} has no usable Location header", shown(from.as_str()))))?;
    let next = from
        .join(location.trim())
        .map_err(|e| refuse(format!("HTTP {status} from {} points to an invalid URL ({e})", shown(from.as_str()))))?;
    if !next.username().is_empty() || next.password().is_some() {
        // Say nothing more about it: it carries a secret.
        return Err(refuse(format!("the target from {} carries credentials (user:password@)", shown(from.as_str()))));
    }
    if !matches!(next.scheme(), "http" | "https") {
        return Err(refuse(format!("the target {} is not http(s)", shown(next.as_str()))));
    }
    if next.scheme() != scheme {
        return Err(refuse(format!(
            "the target {} changes the scheme from {scheme} to {}",
            shown(next.as_str()),
            next.scheme()
        )));
    }
    if visited.iter().any(|v| v == next.as_str()) {
        return Err(refuse(format!("the target {} was visited already (a redirect loop)", shown(next.as_str()))));
    }
    Ok(next)
}

/// Stream the body to a spool file under the cap, then check the pin.
fn receive(response: ureq::http::Response<ureq::Body>, fetch: &Fetch<'_>, url: &Url) -> Result<Downloaded> {
    let label = fetch.label;
    let cap = fetch.limits.max_bytes;
    let too_big = |read: u64| {
        Event::warn(format!("{}_size_exceeded", fetch.prefix))
            .field("path", shown(url.as_str()))
            .field("bytes_read", read)
            .field("cap", cap)
            .emit();
        Error::http_fetch(format!(
            "{label}: the download is larger than RECOTEM_MAX_DOWNLOAD_BYTES ({cap} bytes); it was abandoned. \
             Raise the cap if the file really is that large"
        ))
    };
    let declared = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap) {
        return Err(too_big(0));
    }
    let mut spool = tempfile::tempfile()
        .map_err(|e| Error::http_fetch(format!("{label}: cannot create a temporary file for the download: {e}")))?;
    let mut body = response.into_body().into_reader();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let why = match e.kind() {
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => timed_out("read", fetch.limits.timeout),
                    _ => e.to_string(),
                };
                return Err(Error::http_fetch(format!("{label}: reading the body of {} failed: {why}", shown(url.as_str()))));
            }
        };
        total += n as u64;
        if total > cap {
            return Err(too_big(total));
        }
        hasher.update(&buf[..n]);
        spool
            .write_all(&buf[..n])
            .map_err(|e| Error::http_fetch(format!("{label}: writing the download to a temporary file failed: {e}")))?;
    }
    let actual: [u8; 32] = hasher.finalize().into();
    let expected = decode_pin(fetch.sha256)
        .ok_or_else(|| Error::recipe(format!("{label}: the sha256 pin must be 64 lower-case hex digits")))?;
    if !constant_time_eq(&actual, &expected) {
        return Err(Error::http_fetch(format!(
            "{label}: sha256 mismatch (expected {}…, got {}…); the file at the URL is not the one pinned — \
             update the recipe's sha256 if the change is intended",
            &fetch.sha256[..8],
            &hex::encode(actual)[..8]
        )));
    }
    spool.rewind().map_err(|e| Error::http_fetch(format!("{label}: {e}")))?;
    Ok(Downloaded { file: spool, bytes: total })
}

fn decode_pin(pin: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(pin).ok()?;
    bytes.try_into().ok()
}

/// Equal without an early exit, so the time taken says nothing about where
/// the digests differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> Option<&'static str> {
        refused_range(s.parse().unwrap())
    }

    #[test]
    fn every_refused_ipv4_range() {
        for (ip, what) in [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "this network"),
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("10.0.0.1", "RFC 1918"),
            ("172.16.0.1", "RFC 1918"),
            ("172.31.255.255", "RFC 1918"),
            ("192.168.1.1", "RFC 1918"),
            ("169.254.169.254", "metadata"),
            ("169.254.1.1", "link-local"),
            ("100.64.0.1", "carrier-grade"),
            ("100.127.255.255", "carrier-grade"),
            ("192.0.0.8", "IETF"),
            ("192.0.2.1", "TEST-NET"),
            ("198.51.100.7", "TEST-NET"),
            ("203.0.113.9", "TEST-NET"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.255", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "reserved"),
        ] {
            let got = refused(ip).unwrap_or_else(|| panic!("{ip} should be refused"));
            assert!(got.contains(what), "{ip}: {got}");
        }
        for ok in ["8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.1", "100.63.255.255", "100.128.0.1", "198.17.0.1", "198.20.0.1", "192.0.1.1", "169.253.1.1", "223.255.255.255"] {
            assert_eq!(refused(ok), None, "{ok} is public");
        }
    }

    #[test]
    fn every_refused_ipv6_range_and_mapped_v4() {
        for (ip, what) in [
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.1.2.3", "RFC 1918"),
            ("::ffff:169.254.169.254", "metadata"),
            ("::ffff:100.64.0.1", "carrier-grade"),
            ("64:ff9b::a00:1", "NAT64"),
            ("64:ff9b::808:808", "NAT64"),
            ("64:ff9b:1::1", "NAT64"),
            ("2001:db8::1", "documentation"),
            ("2001::1", "IETF"),
            ("2002:7f00:1::", "6to4"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("fec0::1", "reserved"),
            ("::127.0.0.1", "reserved"),
            ("100::1", "reserved"),
        ] {
            let got = refused(ip).unwrap_or_else(|| panic!("{ip} should be refused"));
            assert!(got.contains(what), "{ip}: {got}");
        }
        for ok in ["2606:4700:4700::1111", "2a00:1450:4001::1", "::ffff:8.8.8.8", "2002:808:808::1", "2001:4860::1"] {
            assert_eq!(refused(ok), None, "{ok} is public");
        }
    }

    #[test]
    fn userinfo_is_never_shown() {
        assert_eq!(shown("https://alice:hunter2@example.com/x.csv"), "https://***@example.com/x.csv");
        assert_eq!(shown("https://example.com/x.csv?a=b"), "https://example.com/x.csv?a=b");
        assert!(!shown("http://u:p@[bad/x").contains("p@"));
    }

    #[test]
    fn odd_ipv4_spellings_are_judged_as_the_address_they_mean() {
        let limits = Limits { max_bytes: 1 << 20, timeout: Duration::from_secs(1), allow_private: false };
        for raw in ["http://2130706433/x", "http://0x7f.1/x", "http://127.1/x", "http://[::ffff:7f00:1]/x"] {
            let e = check_destination(raw, "source.path", limits).unwrap_err();
            assert_eq!(e.exit_code(), 7, "{raw}");
            assert!(e.message().contains("SSRF guard"), "{raw}: {e}");
        }
        let open = Limits { allow_private: true, ..limits };
        assert!(check_destination("http://127.0.0.1:9/x", "source.path", open).is_ok());
    }

    #[test]
    fn pins_compare_whole_digests() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(constant_time_eq(&a, &b));
        b[31] ^= 1;
        assert!(!constant_time_eq(&a, &b));
        assert_eq!(decode_pin(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(decode_pin("ab"), None);
    }
}
