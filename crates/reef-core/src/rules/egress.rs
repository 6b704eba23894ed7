//! Where a contained agent's network may go through REEF's egress proxy: each executor's
//! allow-list (`egress = ["registry.npmjs.org", "*.github.com:443", "10.0.0.5:8080"]`), nothing
//! by default.
//!
//! Invariant: a destination passes only when a rule names it, and it is checked by name before
//! anything resolves it (so an unlisted name never reaches a resolver); an address that is not
//! globally routable (the store, the gateway's admin API, the host's network, cloud metadata)
//! passes only when a rule names that exact address and port — never through a name or a wildcard.

use std::net::IpAddr;

/// One allowed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressRule {
    /// A lower-case host name, `*.suffix` for any name under it, or an IP address.
    host: String,
    /// `None`: 443 and 80.
    port: Option<u16>,
}

impl EgressRule {
    /// Parses `host`, `host:port`, `*.domain[:port]`, `ip:port` or `[v6]:port`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !h.ends_with(':') && p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() => {
                let port: u16 = p.parse().map_err(|_| format!("{s:?}: {p} is not a port"))?;
                if port == 0 {
                    return Err(format!("{s:?}: port 0"));
                }
                (h.trim_start_matches('[').trim_end_matches(']'), Some(port))
            }
            _ => (s, None),
        };
        let host = host.to_ascii_lowercase();
        let name = host.strip_prefix("*.").unwrap_or(&host);
        let valid_name = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        if !(valid_name || host.parse::<IpAddr>().is_ok()) {
            return Err(format!("{s:?} is not a host name, *.domain or IP address (with an optional :port)"));
        }
        if host.parse::<IpAddr>().is_ok_and(local) && port.is_none() {
            return Err(format!("{s:?} is a local address: name its port too (e.g. {host}:8080), so only that service is reachable"));
        }
        Ok(Self { host, port })
    }

    fn port_ok(&self, port: u16) -> bool {
        match self.port {
            Some(p) => p == port,
            None => port == 443 || port == 80,
        }
    }

    /// Whether this rule lets a connection to `host:port` (as the agent asked for it) through.
    pub fn allows_name(&self, host: &str, port: u16) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if !self.port_ok(port) {
            return false;
        }
        match self.host.strip_prefix("*.") {
            Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(suffix) && host[..host.len() - suffix.len()].ends_with('.'),
            None => self.host == host,
        }
    }

    /// Whether this rule names `ip:port` exactly (what a local address needs).
    fn names_exactly(&self, ip: IpAddr, port: u16) -> bool {
        self.port == Some(port) && self.host.parse::<IpAddr>().is_ok_and(|h| h == ip)
    }
}

impl std::fmt::Display for EgressRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match self.port {
            Some(p) => write!(f, "{host}:{p}"),
            None => write!(f, "{host}"),
        }
    }
}

/// Every address that is not globally routable — this host, its link, private networks,
/// carrier-grade NAT (where cloud metadata services sit), multicast, reserved ranges — never
/// reached through a name or a wildcard.
pub fn local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            let [a, b, c, _] = v.octets();
            v.is_loopback()
                || v.is_private()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_broadcast()
                || v.is_multicast()
                || v.is_documentation()
                || a == 0
                || (a == 100 && (b & 0xc0) == 64)
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b & 0xfe) == 18)
                || a >= 240
        }
        IpAddr::V6(v) => {
            let s = v.segments();
            v.is_loopback()
                || v.is_unspecified()
                || v.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || v.to_ipv4_mapped().is_some_and(|m| local(IpAddr::V4(m)))
                // NAT64 carries an IPv4 address in its last 32 bits.
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0]
                    && local(IpAddr::V4(std::net::Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8))))
        }
    }
}

/// Why a destination was refused, for the agent and the audit log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressDenied {
    #[error("{0}:{1} is not on this executor's egress allow-list")]
    NotListed(String, u16),
    #[error("{host}:{port} resolves to {ip}, an internal address; only a rule naming {ip}:{port} reaches it")]
    Local { host: String, port: u16, ip: IpAddr },
}

/// Whether any rule lets `host:port` through by name: asked before the name is resolved.
pub fn listed(rules: &[EgressRule], host: &str, port: u16) -> Result<(), EgressDenied> {
    if rules.iter().any(|r| r.allows_name(host, port)) {
        Ok(())
    } else {
        Err(EgressDenied::NotListed(host.to_string(), port))
    }
}

/// Checks `host:port` by name, then each address it resolved to.
pub fn check(rules: &[EgressRule], host: &str, port: u16, resolved: &[IpAddr]) -> Result<(), EgressDenied> {
    listed(rules, host, port)?;
    for ip in resolved {
        if local(*ip) && !rules.iter().any(|r| r.names_exactly(*ip, port)) {
            return Err(EgressDenied::Local { host: host.to_string(), port, ip: *ip });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[&str]) -> Vec<EgressRule> {
        list.iter().map(|s| EgressRule::parse(s).unwrap()).collect()
    }

    #[test]
    fn names_wildcards_and_ports() {
        let r = rules(&["registry.npmjs.org", "*.github.com:443"]);
        assert!(check(&r, "registry.npmjs.org", 443, &[]).is_ok());
        assert!(check(&r, "REGISTRY.npmjs.org.", 80, &[]).is_ok());
        assert!(check(&r, "registry.npmjs.org", 22, &[]).is_err());
        assert!(check(&r, "api.github.com", 443, &[]).is_ok());
        assert!(check(&r, "github.com", 443, &[]).is_err(), "*.github.com is names under it");
        assert!(check(&r, "evilgithub.com", 443, &[]).is_err());
        assert!(check(&r, "api.github.com", 80, &[]).is_err());
        assert!(check(&[], "anything.org", 443, &[]).is_err(), "nothing by default");
    }

    #[test]
    fn local_addresses_need_a_rule_naming_them_exactly() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let r = rules(&["*.example.com", "localhost.example.com", "127.0.0.1:8443"]);
        let e = check(&r, "localhost.example.com", 443, &[lo]).unwrap_err();
        assert!(matches!(e, EgressDenied::Local { .. }), "a listed name that resolves to loopback: {e}");
        assert!(check(&r, "127.0.0.1", 8443, &[lo]).is_ok());
        assert!(check(&r, "127.0.0.1", 27017, &[lo]).is_err(), "the store's port is not named");
        assert!(check(&r, "x.example.com", 443, &["::ffff:127.0.0.1".parse().unwrap()]).is_err());
        for internal in [
            "169.254.169.254",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.5",
            "100.100.100.200",
            "fd00:ec2::254",
            "64:ff9b::7f00:1",
            "0.0.0.0",
            "224.0.0.1",
        ] {
            assert!(check(&r, "x.example.com", 443, &[internal.parse().unwrap()]).is_err(), "{internal}");
        }
        assert!(check(
            &r,
            "x.example.com",
            443,
            &["93.184.215.14".parse().unwrap(), "2606:2800:21f:cb07:6820:80da:af6b:8b2c".parse().unwrap()]
        )
        .is_ok());
        assert!(EgressRule::parse("127.0.0.1").is_err(), "a local address without a port is refused in config");
        for bad in ["", "a b", "http://x.org", "x.org:0", "x.org:99999", "*."] {
            assert!(EgressRule::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(EgressRule::parse("[::1]:8080").unwrap(), EgressRule { host: "::1".into(), port: Some(8080) });
    }
}
