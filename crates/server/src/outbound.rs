//! Where notification channels may send. A webhook URL is typed by anyone who may write tenant
//! configuration, so it must not turn the server into a way into its own network (SSRF, as
//! OWASP describes it): loopback, private, shared (CGNAT), link-local (cloud metadata),
//! unspecified, multicast and reserved addresses, and IPv6 forms that embed them, are refused
//! unless the operator allowlists their network (`notify_allow_networks`). The URL's host is
//! checked when a channel is saved and again at send time on every address DNS returns, so a
//! name that resolves inward (or is rebound to do so later) is refused too. Redirects are not
//! followed.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How long a save-time DNS look-up may take; a name that does not resolve then is checked at
/// send time.
const SAVE_LOOKUP: Duration = Duration::from_secs(2);

fn v4_internal(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || a == 0
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || ip.is_multicast()
        || a >= 240
}

/// The IPv4 address an IPv6 address stands for: mapped (`::ffff:a.b.c.d`), compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) or 6to4 (`2002:AABB:CCDD::/48`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(tail),
        [0, 0, 0, 0, 0, 0, _, _] if !ip.is_loopback() && !ip.is_unspecified() => Some(tail),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)),
        _ => None,
    }
}

/// Whether `ip` is an address inside someone's network rather than on the internet.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_internal(v4),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_unspecified()
                || v6.is_loopback()
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || (first & 0xfe00) == 0xfc00
                || v6.is_multicast()
                || embedded_v4(v6).is_some_and(v4_internal)
        }
    }
}

/// The operator's allowlist, shared by the save-time check and the client's resolver.
#[derive(Debug, Clone, Default)]
pub struct Allow(Arc<Vec<IpNet>>);

impl Allow {
    pub fn new(networks: &[IpNet]) -> Self {
        Allow(Arc::new(networks.to_vec()))
    }

    /// Whether a channel may send to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        !is_internal(ip) || self.0.iter().any(|net| net.contains(&ip) || mapped.is_some_and(|m| net.contains(&m)))
    }
}

/// Why an address is refused, for people.
fn refusal(host: &str, ip: IpAddr) -> String {
    format!(
        "'{host}' is {ip}, an internal address (loopback, private, link-local or reserved); a notification \
         channel may only reach it if the server's operator allows its network (notify_allow_networks)"
    )
}

/// A URL's host: an IP address, or a name.
enum Host {
    Ip(IpAddr),
    Name(String),
}

fn host_of(url: &str) -> Result<(Host, u16), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("url is not a valid address: {e}"))?;
    let port = parsed.port_or_known_default().unwrap_or(443);
    match parsed.host() {
        Some(url::Host::Ipv4(ip)) => Ok((Host::Ip(IpAddr::V4(ip)), port)),
        Some(url::Host::Ipv6(ip)) => Ok((Host::Ip(IpAddr::V6(ip)), port)),
        Some(url::Host::Domain(name)) => Ok((Host::Name(name.trim_end_matches('.').to_ascii_lowercase()), port)),
        None => Err("url has no host".into()),
    }
}

/// A name every resolver answers with loopback (RFC 6761), refused without a look-up.
fn is_localhost(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
}

/// The check before sending, on what the URL names itself (the resolver checks names' addresses).
pub fn check_literal(url: &str, allow: &Allow) -> Result<(), String> {
    match host_of(url)? {
        (Host::Ip(ip), _) if !allow.permits(ip) => Err(refusal(&ip.to_string(), ip)),
        (Host::Name(name), _) if is_localhost(&name) && !allow.permits(IpAddr::V4(Ipv4Addr::LOCALHOST)) => {
            Err(refusal(&name, IpAddr::V4(Ipv4Addr::LOCALHOST)))
        }
        _ => Ok(()),
    }
}

/// The check when a channel is saved: the URL's host, and every address its name resolves to
/// now. A name that does not resolve here is left to the send-time check.
pub async fn check_when_saved(url: &str, allow: &Allow) -> Result<(), String> {
    check_literal(url, allow)?;
    let (Host::Name(name), port) = host_of(url)? else { return Ok(()) };
    let Ok(Ok(addresses)) = tokio::time::timeout(SAVE_LOOKUP, tokio::net::lookup_host((name.as_str(), port))).await
    else {
        return Ok(());
    };
    for address in addresses {
        if !allow.permits(address.ip()) {
            return Err(refusal(&name, address.ip()));
        }
    }
    Ok(())
}

/// The resolver's refusal, found again in the client's error chain to say why nothing was sent.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(String);

/// The refusal behind a failed send, if an address check caused it.
pub fn refused_in(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused.0.clone());
        }
        source = e.source();
    }
    None
}

/// Resolves names as the system does, then refuses the answer if any address is internal and
/// not allowed: the check happens on the very addresses the client connects to, so DNS
/// rebinding between the check and the connection is impossible.
struct GuardedResolver {
    allow: Allow,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addresses.iter().find(|a| !allow.permits(a.ip())) {
                return Err(Box::new(Refused(refusal(&host, bad.ip()))) as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client notifications are sent with: addresses checked on resolution, no redirects
/// (a receiver could otherwise bounce the request inward), a timeout.
pub fn client(allow: &Allow) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedResolver { allow: allow.clone() }))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn internal_addresses_in_every_spelling_are_refused() {
        for internal in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "::127.0.0.1",
        ] {
            assert!(is_internal(ip(internal)), "{internal} is internal");
        }
        for public in ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!is_internal(ip(public)), "{public} is on the internet");
        }
    }

    #[test]
    fn the_allowlist_opens_only_its_networks() {
        let allow = Allow::new(&["127.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()]);
        assert!(
            allow.permits(ip("127.0.0.1")) && allow.permits(ip("::ffff:127.0.0.1")) && allow.permits(ip("fd00::1"))
        );
        assert!(!allow.permits(ip("10.0.0.1")) && !allow.permits(ip("169.254.169.254")) && !allow.permits(ip("::1")));
        assert!(Allow::default().permits(ip("8.8.8.8")));
    }

    #[test]
    fn literal_hosts_and_localhost_are_checked_before_any_lookup() {
        let none = Allow::default();
        for url in [
            "http://127.0.0.1:9/hook",
            "http://[::1]/x",
            "http://169.254.169.254/latest/meta-data",
            "http://[::ffff:a9fe:a9fe]/",
            "http://localhost:8080/",
            "http://api.localhost./",
            "http://0x7f000001/",
            "http://2130706433/",
        ] {
            assert!(check_literal(url, &none).is_err(), "{url} is refused");
        }
        assert!(check_literal("https://hooks.slack.com/services/T/B/X", &none).is_ok());
        assert!(check_literal("not a url", &none).is_err());
    }
}
