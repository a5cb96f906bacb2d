//! Which addresses oxidp may connect to on behalf of an untrusted party: a pure function over
//! one IP address and the policy, so the resolver and literal-IP URLs share it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// What the deployment allows beyond public addresses (`OXIDP_OUTBOUND_ALLOW_*`).
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    /// Networks that may be reached even though they are special (and over plain `http`).
    pub allow_cidrs: Vec<IpNet>,
    /// Loopback (127.0.0.0/8, ::1) may be reached, over `http` too: tests and local development.
    pub allow_loopback: bool,
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) become the IPv4 address they carry, so a rule
/// written for IPv4 cannot be bypassed by spelling the address in IPv6.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Loopback: all of 127.0.0.0/8 and ::1 (IPv4-mapped forms included).
pub fn is_loopback_ip(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback(),
    }
}

/// A URL host that is a loopback IP literal. Names (`localhost`) are not: what they resolve
/// to is not the URL's to say.
pub fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Ipv4(v4) => is_loopback_ip(IpAddr::V4(*v4)),
        url::Host::Ipv6(v6) => is_loopback_ip(IpAddr::V6(*v6)),
        url::Host::Domain(_) => false,
    }
}

/// Allowed by the deployment's explicit choice: in `allow_cidrs`, or loopback with `allow_loopback`.
/// Only such addresses may be reached over plain `http`.
pub fn is_explicitly_allowed(ip: IpAddr, policy: &OutboundPolicy) -> bool {
    let canonical = canonical(ip);
    policy.allow_cidrs.iter().any(|net| net.contains(&canonical) || net.contains(&ip))
        || (policy.allow_loopback && is_loopback_ip(canonical))
}

/// Whether oxidp must refuse to connect to `ip` for an untrusted URL.
pub fn is_forbidden(ip: IpAddr, policy: &OutboundPolicy) -> bool {
    !is_explicitly_allowed(ip, policy) && is_special(canonical(ip))
}

/// Not a public unicast address: loopback, private, link-local, shared, documentation,
/// benchmarking, reserved, multicast, broadcast, unspecified, and IPv6 forms embedding those.
pub fn is_special(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_special_v4(v4),
        IpAddr::V6(v6) => is_special_v6(v6),
    }
}

/// (network, prefix length) of every IPv4 block that is not public unicast.
const SPECIAL_V4: [(u32, u32); 16] = [
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network", unspecified
    (0x0a00_0000, 8),  // 10.0.0.0/8 private
    (0x6440_0000, 10), // 100.64.0.0/10 CGNAT shared space
    (0x7f00_0000, 8),  // 127.0.0.0/8 loopback
    (0xa9fe_0000, 16), // 169.254.0.0/16 link-local (cloud metadata)
    (0xac10_0000, 12), // 172.16.0.0/12 private
    (0xc000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
    (0xc000_0200, 24), // 192.0.2.0/24 TEST-NET-1
    (0xc058_6300, 24), // 192.88.99.0/24 6to4 relay anycast
    (0xc0a8_0000, 16), // 192.168.0.0/16 private
    (0xc612_0000, 15), // 198.18.0.0/15 benchmarking
    (0xc633_6400, 24), // 198.51.100.0/24 TEST-NET-2
    (0xcb00_7100, 24), // 203.0.113.0/24 TEST-NET-3
    (0xe000_0000, 4),  // 224.0.0.0/4 multicast
    (0xf000_0000, 4),  // 240.0.0.0/4 reserved, 255.255.255.255 broadcast
    (0xffff_ffff, 32), // broadcast (inside 240/4; listed for clarity)
];

fn is_special_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || SPECIAL_V4.iter().any(|&(net, len)| in_v4(bits, net, len))
}

fn in_v4(bits: u32, net: u32, len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    bits & mask == net & mask
}

fn in_v6(bits: u128, net: u128, len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
    bits & mask == net & mask
}

/// IPv6 blocks inside global unicast 2000::/3 that are never a public server.
const SPECIAL_V6: [(u128, u32); 4] = [
    (0x2001_0000_0000_0000_0000_0000_0000_0000, 23), // 2001::/23 protocol assignments (benchmarking, ORCHID…)
    (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32), // 2001:db8::/32 documentation
    (0x3fff_0000_0000_0000_0000_0000_0000_0000, 20), // 3fff::/20 documentation (RFC 9637)
    (0x5f00_0000_0000_0000_0000_0000_0000_0000, 16), // 5f00::/16 SRv6 SIDs (RFC 9602)
];

fn is_special_v6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    // NAT64 well-known prefix 64:ff9b::/96: the IPv4 address in the last 32 bits.
    if in_v6(bits, 0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96) {
        return is_special_v4(low32);
    }
    // 6to4 2002::/16: the IPv4 address in bits 16..48.
    if in_v6(bits, 0x2002_0000_0000_0000_0000_0000_0000_0000, 16) {
        return is_special_v4(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    // Teredo 2001::/32: the server in bits 32..64, the client obfuscated in the last 32 bits.
    if in_v6(bits, 0x2001_0000_0000_0000_0000_0000_0000_0000, 32) {
        let server = Ipv4Addr::from(((bits >> 64) & 0xffff_ffff) as u32);
        let client = Ipv4Addr::from(!((bits & 0xffff_ffff) as u32));
        return is_special_v4(server) || is_special_v4(client);
    }
    // Everything outside global unicast 2000::/3: ::, ::1, IPv4-compatible ::/96, discard
    // 100::/64, local-use NAT64 64:ff9b:1::/48, unique local fc00::/7, link-local fe80::/10,
    // site-local fec0::/10, multicast ff00::/8, and what is not yet allocated.
    if !in_v6(bits, 0x2000_0000_0000_0000_0000_0000_0000_0000, 3) {
        return true;
    }
    SPECIAL_V6.iter().any(|&(net, len)| in_v6(bits, net, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(text: &str) -> bool {
        is_forbidden(text.parse().expect("ip"), &OutboundPolicy::default())
    }

    #[test]
    fn special_ipv4_ranges_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "198.19.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(forbidden(ip), "{ip} must be forbidden");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "198.20.0.1", "2606:4700::1111", "2a00:1450::1"] {
            assert!(!forbidden(ip), "{ip} must be allowed");
        }
    }

    #[test]
    fn special_ipv6_ranges_are_forbidden() {
        for ip in [
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:0a00:0001::1",
            "2001:db8::1",
            "3fff::1",
            "2001:2::1",
            // Teredo with the client 127.0.0.1 (obfuscated: 80ff:fffe).
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
        ] {
            assert!(forbidden(ip), "{ip} must be forbidden");
        }
        // Embedding a public IPv4 address is fine.
        assert!(!forbidden("64:ff9b::808:808"));
        assert!(!forbidden("2002:0808:0808::1"));
        assert!(!forbidden("::ffff:8.8.8.8"));
    }

    #[test]
    fn policy_allows_loopback_and_listed_networks() {
        let loopback = OutboundPolicy { allow_cidrs: Vec::new(), allow_loopback: true };
        assert!(!is_forbidden("127.0.0.1".parse().expect("ip"), &loopback));
        assert!(!is_forbidden("127.9.9.9".parse().expect("ip"), &loopback));
        assert!(!is_forbidden("::1".parse().expect("ip"), &loopback));
        assert!(!is_forbidden("::ffff:127.0.0.1".parse().expect("ip"), &loopback));
        assert!(is_forbidden("10.0.0.1".parse().expect("ip"), &loopback), "loopback only");
        let listed = OutboundPolicy { allow_cidrs: vec!["10.1.0.0/16".parse().expect("net")], allow_loopback: false };
        assert!(!is_forbidden("10.1.2.3".parse().expect("ip"), &listed));
        assert!(!is_forbidden("::ffff:10.1.2.3".parse().expect("ip"), &listed));
        assert!(is_forbidden("10.2.0.1".parse().expect("ip"), &listed));
        assert!(is_forbidden("127.0.0.1".parse().expect("ip"), &listed));
        assert!(is_explicitly_allowed("10.1.2.3".parse().expect("ip"), &listed));
        assert!(!is_explicitly_allowed("8.8.8.8".parse().expect("ip"), &listed), "public is not explicit");
    }

    #[test]
    fn loopback_hosts() {
        let host = |text: &str| url::Url::parse(&format!("http://{text}/")).expect("url");
        for text in ["127.0.0.1", "127.0.0.2", "127.255.255.254", "[::1]", "[::ffff:127.0.0.1]"] {
            assert!(host(text).host().is_some_and(|h| is_loopback_host(&h)), "{text}");
        }
        for text in ["localhost", "128.0.0.1", "[::2]", "example.com"] {
            assert!(!host(text).host().is_some_and(|h| is_loopback_host(&h)), "{text}");
        }
    }
}
