//! Which addresses are ours and which are not on the public internet at all.
//!
//! [`Networks`] holds `[networks] trusted` (corporate egress, VPN): never an impossible-travel
//! endpoint. [`is_private_or_reserved`] flags addresses that cannot be located (private,
//! loopback, link-local, shared, documentation, benchmarking, multicast, reserved): they get
//! no geo lookup and never pair for travel.
//!
//! To add a special range: add a row to [`V4_SPECIAL`] or [`V6_SPECIAL`] with its RFC and
//! an edge-address test at the bottom of this file.
//!
//! IPv6 forms that carry an IPv4 address are judged as that IPv4 address:
//! IPv4-mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16` (the embedded
//! address in bits 16..48) and Teredo `2001::/32` (the client address, bits 96..128
//! inverted). IPv4-compatible `::/96` is deprecated (RFC 4291) and counts as reserved, as does
//! everything outside global unicast `2000::/3` that no row names.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::EnrichError;

/// `[networks]` of `picket.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworksConfig {
    /// Trusted networks (CIDR like `203.0.113.0/24`, or a single address): corporate egress
    /// and VPN. Sign-ins from them are never impossible-travel endpoints.
    #[serde(default)]
    pub trusted: Vec<String>,
}

/// The trusted networks, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks {
    trusted: Vec<IpNet>,
}

impl Networks {
    /// Parses `[networks] trusted`; an error names the bad entry and its index.
    pub fn from_config(config: &NetworksConfig) -> Result<Networks, EnrichError> {
        Networks::new(&config.trusted)
    }

    /// Parses CIDRs or single addresses (host bits of a CIDR are ignored).
    pub fn new<S: AsRef<str>>(trusted: &[S]) -> Result<Networks, EnrichError> {
        let mut nets = Vec::with_capacity(trusted.len());
        for (index, entry) in trusted.iter().enumerate() {
            let entry = entry.as_ref().trim();
            let net = if entry.contains('/') {
                entry
                    .parse::<IpNet>()
                    .map(|n| n.trunc())
                    .map_err(|e| e.to_string())
            } else {
                entry
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| "not an IP address or CIDR".to_string())
            };
            match net {
                // Addresses are canonicalized before matching, so an IPv4-mapped network
                // (`::ffff:10.0.0.0/104`) is stored as its IPv4 form.
                Ok(net) => nets.push(canonical_net(net)),
                Err(message) => {
                    return Err(EnrichError::Network {
                        index,
                        entry: entry.to_string(),
                        message,
                    });
                }
            }
        }
        Ok(Networks { trusted: nets })
    }

    /// The trusted networks.
    pub fn trusted(&self) -> &[IpNet] {
        &self.trusted
    }

    /// Whether `ip` (IPv4-mapped IPv6 judged as its IPv4) is in a trusted network.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|n| n.contains(&ip))
    }
}

/// `::ffff:a.b.c.d/(96+n)` as `a.b.c.d/n`; other networks unchanged.
fn canonical_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && v6.prefix_len() >= 96
        && let Some(v4) = v6.network().to_ipv4_mapped()
        && let Ok(n) = ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(n);
    }
    net
}

/// Special IPv4 ranges: (network, prefix length, name).
pub const V4_SPECIAL: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, "this network (RFC 791)"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private (RFC 1918)"),
    (
        Ipv4Addr::new(100, 64, 0, 0),
        10,
        "shared address space (RFC 6598)",
    ),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback (RFC 1122)"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local (RFC 3927)"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private (RFC 1918)"),
    (
        Ipv4Addr::new(192, 0, 0, 0),
        24,
        "IETF protocol assignments (RFC 6890)",
    ),
    (
        Ipv4Addr::new(192, 0, 2, 0),
        24,
        "documentation TEST-NET-1 (RFC 5737)",
    ),
    (
        Ipv4Addr::new(192, 88, 99, 0),
        24,
        "6to4 relay anycast (RFC 7526, deprecated)",
    ),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private (RFC 1918)"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking (RFC 2544)"),
    (
        Ipv4Addr::new(198, 51, 100, 0),
        24,
        "documentation TEST-NET-2 (RFC 5737)",
    ),
    (
        Ipv4Addr::new(203, 0, 113, 0),
        24,
        "documentation TEST-NET-3 (RFC 5737)",
    ),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast (RFC 5771)"),
    (
        Ipv4Addr::new(240, 0, 0, 0),
        4,
        "reserved (RFC 1112), incl. broadcast",
    ),
];

/// Special IPv6 ranges: (network, prefix length, name). Forms that embed an IPv4 address are
/// handled in code before this table is consulted.
pub const V6_SPECIAL: &[(Ipv6Addr, u8, &str)] = &[
    (Ipv6Addr::UNSPECIFIED, 128, "unspecified (RFC 4291)"),
    (Ipv6Addr::LOCALHOST, 128, "loopback (RFC 4291)"),
    (
        Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0),
        96,
        "IPv4-compatible (RFC 4291, deprecated)",
    ),
    (
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        "local-use NAT64 (RFC 8215)",
    ),
    (
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        64,
        "discard-only (RFC 6666)",
    ),
    (
        Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0),
        48,
        "benchmarking (RFC 5180)",
    ),
    (
        Ipv6Addr::new(0x2001, 0x10, 0, 0, 0, 0, 0, 0),
        28,
        "ORCHID (RFC 4843, deprecated)",
    ),
    (
        Ipv6Addr::new(0x2001, 0x20, 0, 0, 0, 0, 0, 0),
        28,
        "ORCHIDv2 (RFC 7343)",
    ),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        "documentation (RFC 3849)",
    ),
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        "documentation (RFC 9637)",
    ),
    (
        Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0),
        16,
        "SRv6 SIDs (RFC 9602)",
    ),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        "unique local (RFC 4193)",
    ),
    (
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
        10,
        "link-local (RFC 4291)",
    ),
    (
        Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
        10,
        "site-local (RFC 3879, deprecated)",
    ),
    (
        Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
        8,
        "multicast (RFC 4291)",
    ),
];

fn in_v4(ip: u32, net: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    ip & mask == u32::from(net) & mask
}

fn in_v6(ip: u128, net: Ipv6Addr, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    ip & mask == u128::from(net) & mask
}

/// The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4, Teredo), if any.
pub fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if in_v6(bits, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96) {
        return Some(Ipv4Addr::from(bits as u32));
    }
    if in_v6(bits, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        return Some(Ipv4Addr::from((bits >> 80) as u32));
    }
    if in_v6(bits, Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32) {
        return Some(Ipv4Addr::from(!(bits as u32)));
    }
    None
}

/// The name of the special-purpose range `ip` lies in, or `None` for a public address.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            V4_SPECIAL
                .iter()
                .find(|(net, len, _)| in_v4(bits, *net, *len))
                .map(|(_, _, name)| *name)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_ipv4(v6) {
                return special_range(IpAddr::V4(v4));
            }
            let bits = u128::from(v6);
            if let Some((_, _, name)) = V6_SPECIAL
                .iter()
                .find(|(net, len, _)| in_v6(bits, *net, *len))
            {
                return Some(name);
            }
            if !in_v6(bits, Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3) {
                return Some("reserved by IETF (outside 2000::/3)");
            }
            None
        }
    }
}

/// Whether `ip` is private, loopback, link-local, shared, documentation, benchmarking,
/// multicast, broadcast or reserved space: not a locatable internet address.
pub fn is_private_or_reserved(ip: IpAddr) -> bool {
    special_range(ip).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn special(s: &str) -> bool {
        is_private_or_reserved(s.parse().unwrap())
    }

    /// Every range with its first and last address flagged and the neighbours outside not.
    #[rustfmt::skip]
    #[test]
    fn ipv4_ranges_edge_addresses() {
        let inside = [
            "0.0.0.0", "0.255.255.255",
            "10.0.0.0", "10.255.255.255",
            "100.64.0.0", "100.127.255.255",
            "127.0.0.1", "127.255.255.255",
            "169.254.0.0", "169.254.255.255",
            "172.16.0.0", "172.31.255.255",
            "192.0.0.0", "192.0.0.255",
            "192.0.2.0", "192.0.2.255",
            "192.88.99.0", "192.88.99.255",
            "192.168.0.0", "192.168.255.255",
            "198.18.0.0", "198.19.255.255",
            "198.51.100.0", "198.51.100.255",
            "203.0.113.0", "203.0.113.255",
            "224.0.0.0", "239.255.255.255",
            "240.0.0.0", "255.255.255.254", "255.255.255.255",
        ];
        for ip in inside {
            assert!(special(ip), "{ip} should be private/reserved");
        }
        let outside = [
            "1.0.0.0", "9.255.255.255", "11.0.0.0",
            "100.63.255.255", "100.128.0.0",
            "126.255.255.255", "128.0.0.0",
            "169.253.255.255", "169.255.0.0",
            "172.15.255.255", "172.32.0.0",
            "191.255.255.255", "192.0.1.0", "192.0.3.0",
            "192.88.98.255", "192.88.100.0",
            "192.167.255.255", "192.169.0.0",
            "198.17.255.255", "198.20.0.0",
            "198.51.99.255", "198.51.101.0",
            "203.0.112.255", "203.0.114.0",
            "223.255.255.255",
            "81.2.69.142", "175.16.199.1", "8.8.8.8",
        ];
        for ip in outside {
            assert!(!special(ip), "{ip} should be public");
        }
    }

    #[rustfmt::skip]
    #[test]
    fn ipv6_ranges_edge_addresses() {
        let inside = [
            "::", "::1", "::2", "::a00:1", "::ffff:ffff",
            "64:ff9b:1::", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
            "100::", "100::ffff:ffff:ffff:ffff",
            "2001:2::", "2001:2:0:ffff:ffff:ffff:ffff:ffff",
            "2001:10::", "2001:1f:ffff:ffff:ffff:ffff:ffff:ffff",
            "2001:20::", "2001:2f:ffff:ffff:ffff:ffff:ffff:ffff",
            "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
            "3fff::", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
            "5f00::1",
            "fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "fec0::1",
            "ff00::", "ff02::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "4000::1", "1::1", "64:ff9b:2::",
            "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ];
        for ip in inside {
            assert!(special(ip), "{ip} should be private/reserved");
        }
        let outside = [
            "2000::", "2001:480:10::1", "2001:218::1", "2a02:cf40::1",
            "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::",
            "2001:1::1", "2001:3::1", "2001:30::1",
            "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "3fff:1000::",
            "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ];
        for ip in outside {
            assert!(!special(ip), "{ip} should be public");
        }
    }

    #[test]
    fn ipv6_forms_with_ipv4_are_judged_as_their_ipv4() {
        // IPv4-mapped.
        assert!(special("::ffff:10.0.0.1"));
        assert!(special("::ffff:127.0.0.1"));
        assert!(!special("::ffff:81.2.69.142"));
        // NAT64 well-known prefix.
        assert!(special("64:ff9b::192.168.1.1"));
        assert!(!special("64:ff9b::8.8.8.8"));
        // 6to4: 2002:AABB:CCDD::/48 embeds AA.BB.CC.DD.
        assert!(special("2002:c0a8:101::1"));
        assert!(!special("2002:0808:0808::1"));
        assert_eq!(
            embedded_ipv4("2002:0808:0404::1".parse().unwrap()),
            Some(Ipv4Addr::new(8, 8, 4, 4))
        );
        // Teredo: client address inverted in the last 32 bits.
        // 10.0.0.1 -> f5ff:fffe; 8.8.8.8 -> f7f7:f7f7.
        assert!(special("2001:0:4136:e378:8000:63bf:f5ff:fffe"));
        assert!(!special("2001:0:4136:e378:8000:63bf:f7f7:f7f7"));
        assert_eq!(
            embedded_ipv4("2001:0:4136:e378:8000:63bf:f7f7:f7f7".parse().unwrap()),
            Some(Ipv4Addr::new(8, 8, 8, 8))
        );
        assert_eq!(embedded_ipv4("2001:480::1".parse().unwrap()), None);
    }

    #[test]
    fn every_table_row_is_exercised_by_name() {
        assert_eq!(
            special_range("100.64.1.2".parse().unwrap()),
            Some("shared address space (RFC 6598)")
        );
        assert_eq!(
            special_range("fd12::1".parse().unwrap()),
            Some("unique local (RFC 4193)")
        );
        assert_eq!(special_range("81.2.69.142".parse().unwrap()), None);
    }

    #[test]
    fn trusted_networks_match_cidrs_addresses_and_mapped_forms() {
        let n = Networks::new(&[
            "203.0.113.0/24",
            " 198.51.100.7 ",
            "2001:db8:1::/48",
            "10.1.2.3/8",
        ])
        .unwrap();
        assert!(n.is_trusted("203.0.113.0".parse().unwrap()));
        assert!(n.is_trusted("203.0.113.255".parse().unwrap()));
        assert!(!n.is_trusted("203.0.114.0".parse().unwrap()));
        assert!(n.is_trusted("::ffff:203.0.113.9".parse().unwrap()));
        assert!(n.is_trusted("198.51.100.7".parse().unwrap()));
        assert!(!n.is_trusted("198.51.100.8".parse().unwrap()));
        assert!(n.is_trusted("2001:db8:1:ffff::1".parse().unwrap()));
        assert!(!n.is_trusted("2001:db8:2::1".parse().unwrap()));
        // Host bits are dropped: 10.1.2.3/8 is 10.0.0.0/8.
        assert!(n.is_trusted("10.200.0.1".parse().unwrap()));
        assert_eq!(n.trusted().len(), 4);
        // An IPv4-mapped network matches both spellings of its addresses.
        let m = Networks::new(&["::ffff:192.0.2.0/120"]).unwrap();
        assert_eq!(m.trusted()[0].to_string(), "192.0.2.0/24");
        assert!(m.is_trusted("192.0.2.77".parse().unwrap()));
        assert!(m.is_trusted("::ffff:192.0.2.77".parse().unwrap()));
        assert!(!m.is_trusted("192.0.3.1".parse().unwrap()));
    }

    #[test]
    fn bad_trusted_entries_are_named_with_their_index() {
        for (entries, index, entry) in [
            (vec!["10.0.0.0/8", "10.0.0.0/33"], 1, "10.0.0.0/33"),
            (vec!["corp-vpn"], 0, "corp-vpn"),
            (vec!["1.2.3.4", "5.6.7.8", "::1/129"], 2, "::1/129"),
            (vec![""], 0, ""),
        ] {
            let err = Networks::new(&entries).unwrap_err();
            match &err {
                EnrichError::Network {
                    index: i, entry: e, ..
                } => {
                    assert_eq!((*i, e.as_str()), (index, entry));
                }
                other => panic!("unexpected {other:?}"),
            }
            let text = err.to_string();
            assert!(text.contains(&format!("trusted[{index}]")), "{text}");
        }
    }
}
