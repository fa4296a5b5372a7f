//! A small MaxMind DB (MMDB v2) writer for synthetic test databases: a binary search tree over
//! IPv6 (IPv4 networks live under `::/96`, as in MaxMind's own databases) with 32-bit
//! records, a data section with each distinct value written once, and the metadata map.
//! Format: <https://maxmind.github.io/MaxMind-DB/>. Read back with the `maxminddb` crate.
//!
//! To support another value type: add a [`MmdbValue`] variant and its case in `encode`.

use std::collections::HashMap;

use ipnet::IpNet;

/// A value in the data section.
#[derive(Debug, Clone, PartialEq)]
pub enum MmdbValue {
    /// UTF-8 string (type 2).
    Str(String),
    /// IEEE-754 double (type 3).
    Double(f64),
    /// Unsigned 16-bit integer (type 5).
    U16(u16),
    /// Unsigned 32-bit integer (type 6).
    U32(u32),
    /// Unsigned 64-bit integer (type 9).
    U64(u64),
    /// Boolean (type 14).
    Bool(bool),
    /// Map with string keys (type 7), written in the given order.
    Map(Vec<(String, MmdbValue)>),
    /// Array (type 11).
    Array(Vec<MmdbValue>),
}

impl MmdbValue {
    /// A map from `(key, value)` pairs.
    pub fn map<const N: usize>(pairs: [(&str, MmdbValue); N]) -> MmdbValue {
        MmdbValue::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    /// A string.
    pub fn str(s: &str) -> MmdbValue {
        MmdbValue::Str(s.to_string())
    }
}

/// Why a database could not be written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MmdbWriteError {
    /// A network of prefix length zero cannot be a tree leaf.
    #[error("network {0} is too wide (prefix length 0)")]
    TooWide(String),
    /// The tree or data section outgrew 32-bit records.
    #[error("database too large for 32-bit records")]
    TooLarge,
    /// A value is too large for the format (string or map size).
    #[error("value too large: {0}")]
    ValueTooLarge(String),
}

/// Collects networks and writes an MMDB file.
#[derive(Debug, Clone)]
pub struct MmdbWriter {
    database_type: String,
    description: String,
    build_epoch: u64,
    networks: Vec<(IpNet, MmdbValue)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rec {
    Empty,
    Node(u32),
    Data(u32),
}

fn control(out: &mut Vec<u8>, type_id: u8, size: usize) -> Result<(), MmdbWriteError> {
    let (size_bits, extra): (u8, Vec<u8>) = if size < 29 {
        (size as u8, vec![])
    } else if size < 29 + 256 {
        (29, vec![(size - 29) as u8])
    } else if size < 285 + 65_536 {
        let s = (size - 285) as u16;
        (30, s.to_be_bytes().to_vec())
    } else if size < 65_821 + (1 << 24) {
        let s = (size - 65_821) as u32;
        (31, s.to_be_bytes()[1..].to_vec())
    } else {
        return Err(MmdbWriteError::ValueTooLarge(format!("size {size}")));
    };
    if type_id <= 7 {
        out.push((type_id << 5) | size_bits);
    } else {
        out.push(size_bits);
        out.push(type_id - 7);
    }
    out.extend(extra);
    Ok(())
}

fn uint(out: &mut Vec<u8>, type_id: u8, v: u64) -> Result<(), MmdbWriteError> {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    control(out, type_id, 8 - skip)?;
    out.extend_from_slice(&bytes[skip..]);
    Ok(())
}

fn encode(out: &mut Vec<u8>, v: &MmdbValue) -> Result<(), MmdbWriteError> {
    match v {
        MmdbValue::Str(s) => {
            control(out, 2, s.len())?;
            out.extend_from_slice(s.as_bytes());
        }
        MmdbValue::Double(d) => {
            control(out, 3, 8)?;
            out.extend_from_slice(&d.to_be_bytes());
        }
        MmdbValue::U16(n) => uint(out, 5, u64::from(*n))?,
        MmdbValue::U32(n) => uint(out, 6, u64::from(*n))?,
        MmdbValue::U64(n) => uint(out, 9, *n)?,
        MmdbValue::Bool(b) => control(out, 14, usize::from(*b))?,
        MmdbValue::Map(pairs) => {
            control(out, 7, pairs.len())?;
            for (k, v) in pairs {
                encode(out, &MmdbValue::Str(k.clone()))?;
                encode(out, v)?;
            }
        }
        MmdbValue::Array(items) => {
            control(out, 11, items.len())?;
            for v in items {
                encode(out, v)?;
            }
        }
    }
    Ok(())
}

impl MmdbWriter {
    /// A writer for a database of `database_type` (`GeoLite2-City`, `GeoLite2-ASN`).
    pub fn new(database_type: &str, description: &str, build_epoch: u64) -> MmdbWriter {
        MmdbWriter {
            database_type: database_type.to_string(),
            description: description.to_string(),
            build_epoch,
            networks: Vec::new(),
        }
    }

    /// Adds a network; more specific networks inside it override it whatever the order.
    pub fn insert(&mut self, net: IpNet, value: MmdbValue) {
        self.networks.push((net.trunc(), value));
    }

    /// The database bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, MmdbWriteError> {
        let mut data = Vec::new();
        let mut offsets: HashMap<Vec<u8>, u32> = HashMap::new();
        let mut nodes: Vec<[Rec; 2]> = vec![[Rec::Empty, Rec::Empty]];
        let mut order: Vec<&(IpNet, MmdbValue)> = self.networks.iter().collect();
        // Wider networks first, so narrower ones split them.
        order.sort_by_key(|(n, _)| tree_prefix(n).1);
        for (net, value) in order {
            let mut bytes = Vec::new();
            encode(&mut bytes, value)?;
            let offset = match offsets.get(&bytes) {
                Some(o) => *o,
                None => {
                    let o = u32::try_from(data.len()).map_err(|_| MmdbWriteError::TooLarge)?;
                    data.extend_from_slice(&bytes);
                    offsets.insert(bytes, o);
                    o
                }
            };
            let (bits, len) = tree_prefix(net);
            if len == 0 {
                return Err(MmdbWriteError::TooWide(net.to_string()));
            }
            let mut node = 0usize;
            for depth in 0..len {
                let bit = ((bits >> (127 - depth)) & 1) as usize;
                if depth + 1 == len {
                    nodes[node][bit] = Rec::Data(offset);
                    break;
                }
                node = match nodes[node][bit] {
                    Rec::Node(n) => n as usize,
                    other => {
                        let fill = match other {
                            Rec::Data(_) => other,
                            _ => Rec::Empty,
                        };
                        nodes.push([fill, fill]);
                        let n = nodes.len() - 1;
                        nodes[node][bit] = Rec::Node(n as u32);
                        n
                    }
                };
            }
        }
        let node_count = u32::try_from(nodes.len()).map_err(|_| MmdbWriteError::TooLarge)?;
        let mut out = Vec::with_capacity(nodes.len() * 8 + 16 + data.len() + 256);
        for pair in &nodes {
            for rec in pair {
                let v = match *rec {
                    Rec::Empty => node_count,
                    Rec::Node(n) => n,
                    Rec::Data(o) => node_count
                        .checked_add(16)
                        .and_then(|x| x.checked_add(o))
                        .ok_or(MmdbWriteError::TooLarge)?,
                };
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(&data);
        out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        let meta = MmdbValue::map([
            ("binary_format_major_version", MmdbValue::U16(2)),
            ("binary_format_minor_version", MmdbValue::U16(0)),
            ("build_epoch", MmdbValue::U64(self.build_epoch)),
            ("database_type", MmdbValue::str(&self.database_type)),
            (
                "description",
                MmdbValue::map([("en", MmdbValue::str(&self.description))]),
            ),
            ("ip_version", MmdbValue::U16(6)),
            ("languages", MmdbValue::Array(vec![MmdbValue::str("en")])),
            ("node_count", MmdbValue::U32(node_count)),
            ("record_size", MmdbValue::U16(32)),
        ]);
        encode(&mut out, &meta)?;
        Ok(out)
    }
}

/// The network's position in an IPv6 tree: bits and prefix length (IPv4 under `::/96`).
fn tree_prefix(net: &IpNet) -> (u128, usize) {
    match net {
        IpNet::V4(n) => (
            u128::from(u32::from(n.network())),
            96 + usize::from(n.prefix_len()),
        ),
        IpNet::V6(n) => (u128::from(n.network()), usize::from(n.prefix_len())),
    }
}

/// A GeoLite2-City-shaped record. `city: None` makes a country-level record.
pub fn city_record(
    city: Option<&str>,
    country: &str,
    lat: f64,
    lon: f64,
    radius_km: u16,
) -> MmdbValue {
    let mut pairs = Vec::new();
    if let Some(city) = city {
        pairs.push((
            "city".to_string(),
            MmdbValue::map([("names", MmdbValue::map([("en", MmdbValue::str(city))]))]),
        ));
    }
    pairs.push((
        "country".to_string(),
        MmdbValue::map([
            ("iso_code", MmdbValue::str(country)),
            ("names", MmdbValue::map([("en", MmdbValue::str(country))])),
        ]),
    ));
    pairs.push((
        "location".to_string(),
        MmdbValue::map([
            ("accuracy_radius", MmdbValue::U16(radius_km)),
            ("latitude", MmdbValue::Double(lat)),
            ("longitude", MmdbValue::Double(lon)),
        ]),
    ));
    MmdbValue::Map(pairs)
}

/// A GeoLite2-ASN-shaped record.
pub fn asn_record(number: u32, org: &str) -> MmdbValue {
    MmdbValue::map([
        ("autonomous_system_number", MmdbValue::U32(number)),
        ("autonomous_system_organization", MmdbValue::str(org)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use maxminddb::{Reader, geoip2};
    use std::net::IpAddr;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn round_trips_through_maxminddb() {
        let mut w = MmdbWriter::new("GeoLite2-City", "synthetic", 1_767_225_600);
        w.insert(
            net("81.2.0.0/16"),
            city_record(Some("London"), "GB", 51.5, -0.12, 20),
        );
        // A narrower network inserted first still wins inside its range.
        w.insert(
            net("81.2.69.0/24"),
            city_record(None, "FR", 46.2, 2.2, 1000),
        );
        w.insert(
            net("2a02:1000::/32"),
            city_record(Some("Paris"), "FR", 48.85, 2.35, 5),
        );
        let long = "x".repeat(300);
        w.insert(
            net("9.9.9.0/24"),
            city_record(Some(&long), "US", 1.0, 2.0, 65_000),
        );
        let bytes = w.to_bytes().unwrap();
        let r = Reader::from_source(bytes).unwrap();
        r.verify().unwrap();
        assert_eq!(r.metadata().database_type, "GeoLite2-City");
        assert_eq!(r.metadata().ip_version, 6);
        let look = |ip: &str| {
            let ip: IpAddr = ip.parse().unwrap();
            let res = r.lookup(ip).unwrap();
            res.decode::<geoip2::City>().unwrap().map(|c| {
                (
                    c.city.names.english.map(str::to_string),
                    c.country.iso_code.map(str::to_string),
                    c.location.latitude,
                    c.location.accuracy_radius,
                )
            })
        };
        assert_eq!(
            look("81.2.1.1"),
            Some((
                Some("London".into()),
                Some("GB".into()),
                Some(51.5),
                Some(20)
            ))
        );
        assert_eq!(
            look("81.2.69.160"),
            Some((None, Some("FR".into()), Some(46.2), Some(1000)))
        );
        assert_eq!(
            look("2a02:1000::1"),
            Some((
                Some("Paris".into()),
                Some("FR".into()),
                Some(48.85),
                Some(5)
            ))
        );
        assert_eq!(look("9.9.9.9").unwrap().0.unwrap().len(), 300);
        assert_eq!(look("82.0.0.1"), None);
        assert_eq!(look("2a03::1"), None);
    }

    #[test]
    fn asn_database_round_trips() {
        let mut w = MmdbWriter::new("GeoLite2-ASN", "synthetic", 0);
        w.insert(net("45.1.0.0/16"), asn_record(14061, "DIGITALOCEAN-ASN"));
        let r = Reader::from_source(w.to_bytes().unwrap()).unwrap();
        let res = r.lookup("45.1.2.3".parse().unwrap()).unwrap();
        let a = res.decode::<geoip2::Asn>().unwrap().unwrap();
        assert_eq!(a.autonomous_system_number, Some(14061));
        assert_eq!(a.autonomous_system_organization, Some("DIGITALOCEAN-ASN"));
    }

    #[test]
    fn zero_prefix_is_refused() {
        let mut w = MmdbWriter::new("x", "x", 0);
        w.insert(net("::/0"), MmdbValue::Bool(true));
        assert!(w.to_bytes().is_err());
    }
}
