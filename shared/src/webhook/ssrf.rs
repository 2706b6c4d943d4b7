//! The SSRF guard: a webhook may only reach public addresses. A URL is checked when an endpoint
//! is created or changed (the api answers 400) and its host is resolved through the guard again
//! at every attempt (the worker's HTTP client resolves with [`Guard::resolve`], so DNS that
//! changed after creation cannot point a delivery inside the network, and the address checked
//! is the address connected to).
//!
//! Refused unless `PULSE_WEBHOOK_ALLOW_NETS` lists them: unspecified (0.0.0.0/8, ::), loopback,
//! private (10/8, 172.16/12, 192.168/16, fc00::/7), shared (100.64/10, where some clouds put
//! their metadata), link-local (169.254/16 with the cloud metadata address, fe80::/10),
//! multicast, broadcast, documentation and reserved ranges, and IPv4-mapped or NAT64 forms of
//! any of them. Written here because the crates that classify addresses do not cover the mapped
//! forms and allow-list together, and this is a short list; Svix keeps the same list by hand.
//! A host with several addresses is refused when any of them is refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use url::{Host, Url};

/// Why a destination is refused; the message is the api's 400 and the attempt log's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    BadUrl(String),
    #[error("{host} does not resolve: {reason}")]
    Dns { host: String, reason: String },
    #[error("{host} resolves to {ip}, which is not a public address (allow it with PULSE_WEBHOOK_ALLOW_NETS)")]
    NotPublic { host: String, ip: IpAddr },
}

/// The allow-list and the checks. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allow: Arc<Vec<IpNet>>,
}

impl Guard {
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self { allow: Arc::new(allow) }
    }

    /// Whether a destination may be `ip`: public, or inside an allowed network.
    pub fn allows(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.allow.iter().any(|net| net.contains(&ip))
    }

    /// An `http` or `https` URL with a host, at most 2048 characters.
    pub fn parse_url(text: &str) -> Result<Url, Refusal> {
        if text.len() > 2048 {
            return Err(Refusal::BadUrl("url is longer than 2048 characters".into()));
        }
        let url = Url::parse(text).map_err(|error| Refusal::BadUrl(format!("url does not parse: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal::BadUrl(format!(
                "url scheme must be http or https, not {:?}",
                url.scheme()
            )));
        }
        if url.host().is_none() {
            return Err(Refusal::BadUrl("url has no host".into()));
        }
        Ok(url)
    }

    /// Parses `text` and checks every address its host resolves to.
    pub async fn check_url(&self, text: &str) -> Result<Url, Refusal> {
        let url = self.parse_checking_literal(text)?;
        if let Some(Host::Domain(domain)) = url.host() {
            self.resolve(domain, url.port_or_known_default().unwrap_or(443)).await?;
        }
        Ok(url)
    }

    /// Parses `text` and refuses it if its host is an address that is not allowed; a host
    /// name is left to [`Guard::resolve`] (the worker's client resolves through it).
    pub fn parse_checking_literal(&self, text: &str) -> Result<Url, Refusal> {
        let url = Self::parse_url(text)?;
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal.filter(|ip| !self.allows(*ip)) {
            return Err(Refusal::NotPublic {
                host: url.host_str().unwrap_or_default().to_owned(),
                ip,
            });
        }
        Ok(url)
    }

    /// Resolves `host` and returns its addresses if every one is allowed.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|error| Refusal::Dns {
                host: host.to_owned(),
                reason: error.to_string(),
            })?
            .collect();
        if addrs.is_empty() {
            return Err(Refusal::Dns {
                host: host.to_owned(),
                reason: "no addresses".into(),
            });
        }
        if let Some(refused) = addrs.iter().find(|addr| !self.allows(addr.ip())) {
            return Err(Refusal::NotPublic {
                host: host.to_owned(),
                ip: refused.ip(),
            });
        }
        Ok(addrs)
    }
}

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let refused = a == 0                                  // 0.0.0.0/8 "this network"
        || a == 10                                        // private
        || (a == 100 && (64..128).contains(&b))           // shared address space (CGNAT, metadata)
        || a == 127                                       // loopback
        || (a == 169 && b == 254)                         // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))            // private
        || (a == 192 && b == 0 && c == 0)                 // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)                 // documentation
        || (a == 192 && b == 88 && c == 99)               // 6to4 relay anycast
        || (a == 192 && b == 168)                         // private
        || (a == 198 && (b == 18 || b == 19))             // benchmarking
        || (a == 198 && b == 51 && c == 100)              // documentation
        || (a == 203 && b == 0 && c == 113)               // documentation
        || a >= 224; // multicast, reserved, broadcast
    !refused
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return is_public_v4(mapped);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = segments[6].to_be_bytes();
        let [c, d] = segments[7].to_be_bytes();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    let first = segments[0];
    let refused = ip.is_unspecified()
        || ip.is_loopback()
        || segments[..6] == [0, 0, 0, 0, 0, 0]             // IPv4-compatible (deprecated)
        || (first & 0xfe00) == 0xfc00                     // unique local, fd00:ec2::254 metadata
        || (first & 0xffc0) == 0xfe80                     // link-local
        || (first & 0xffc0) == 0xfec0                     // site-local (deprecated)
        || (first & 0xff00) == 0xff00                     // multicast
        || (first == 0x2001 && segments[1] == 0x0db8)     // documentation
        || (first == 0x0100 && segments[1..4] == [0, 0, 0]); // discard-only
    !refused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn only_public_unicast_addresses_pass() {
        for refused in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.100.100.200",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "192.0.2.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip(refused)), "{refused} must be refused");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(is_public(ip(public)), "{public} is public");
        }
    }

    #[test]
    fn the_allow_list_opens_exactly_its_networks() {
        let guard = Guard::new(vec!["127.0.0.0/8".parse().expect("net")]);
        assert!(guard.allows(ip("127.0.0.1")));
        assert!(!guard.allows(ip("10.0.0.1")));
        assert!(!Guard::default().allows(ip("127.0.0.1")));
    }

    #[tokio::test]
    async fn urls_are_checked_by_scheme_literal_address_and_resolution() {
        let guard = Guard::default();
        assert!(matches!(Guard::parse_url("ftp://example.com"), Err(Refusal::BadUrl(m)) if m.contains("ftp")));
        assert!(matches!(Guard::parse_url("not a url"), Err(Refusal::BadUrl(_))));
        assert!(matches!(
            guard.check_url("http://169.254.169.254/latest/meta-data").await,
            Err(Refusal::NotPublic { .. })
        ));
        assert!(matches!(
            guard.check_url("http://[::1]:8080/").await,
            Err(Refusal::NotPublic { .. })
        ));
        // A name that resolves to a non-public address (here through /etc/hosts).
        assert!(matches!(
            guard.check_url("http://localhost:9/").await,
            Err(Refusal::NotPublic { .. })
        ));
        assert!(guard.check_url("http://1.1.1.1/hook").await.is_ok());
        let loopback = Guard::new(vec![
            "127.0.0.0/8".parse().expect("net"),
            "::1/128".parse().expect("net"),
        ]);
        assert!(loopback.check_url("http://localhost:9/").await.is_ok());
    }
}
