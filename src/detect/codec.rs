//! The compact binary encoding of per-identity detector state: the values written once per
//! sign-in, where JSON's field names, decimal floats and repeated strings cost most of the
//! bytes and of the encoding time.
//!
//! A value starts with a format byte that JSON never starts with, so a value written by an
//! older picket (JSON, starting with `{` or `[`) still decodes ([`Stored::decode`] falls back).
//! Integers are LEB128 varints (signed ones zigzag-coded), floats 8 little-endian bytes, and
//! strings a varint length and UTF-8 bytes. A string field of an item in a list may instead
//! say "same as in the item before" ([`Writer::repeat_str`]), which is what makes a history of
//! sign-ins from one browser, network and city small.
//!
//! To store a new state type: implement [`Stored`] (binary with its own format byte, or
//! [`json_stored!`] for rarely written values), and add a round-trip test.

use serde::{Serialize, de::DeserializeOwned};

/// A detector's per-identity state as stored bytes.
pub trait Stored: Sized {
    /// Appends the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), String>;
    /// Decodes a stored value (also the JSON of older versions, where the type had one).
    fn decode(bytes: &[u8]) -> Result<Self, String>;
}

/// Implements [`Stored`] as JSON for serde types (values written rarely).
macro_rules! json_stored {
    ($t:ty) => {
        impl $crate::detect::codec::Stored for $t {
            fn encode(&self, out: &mut Vec<u8>) -> Result<(), String> {
                $crate::detect::codec::json_encode(self, out)
            }
            fn decode(bytes: &[u8]) -> Result<Self, String> {
                $crate::detect::codec::json_decode(bytes)
            }
        }
    };
}
pub(crate) use json_stored;

/// JSON encoding for [`json_stored!`].
pub fn json_encode<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), String> {
    serde_json::to_writer(out, value).map_err(|e| e.to_string())
}

/// JSON decoding for [`json_stored!`] and for values older pickets wrote as JSON.
pub fn json_decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// Whether `bytes` look like JSON (an object or array) rather than a binary encoding.
pub fn is_json(bytes: &[u8]) -> bool {
    matches!(bytes.first(), Some(b'{' | b'['))
}

/// A whole binary value: `bytes` start with `format`, `read` reads the fields, and nothing
/// may follow them.
pub fn read_whole<T>(
    bytes: &[u8],
    format: u8,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, String>,
) -> Result<T, String> {
    let mut r = Reader::new(bytes, format)?;
    let value = read(&mut r)?;
    r.finish()?;
    Ok(value)
}

/// Appends binary fields.
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    /// A writer appending to `out`, starting with the format byte.
    pub fn new(out: &'a mut Vec<u8>, format: u8) -> Writer<'a> {
        out.push(format);
        Writer { out }
    }

    /// An unsigned varint.
    pub fn u64(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    /// A signed varint (zigzag).
    pub fn i64(&mut self, v: i64) {
        self.u64(((v << 1) ^ (v >> 63)) as u64);
    }

    /// A float, 8 bytes.
    pub fn f64(&mut self, v: f64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    /// Bytes of a length both sides know.
    pub fn raw(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }

    /// A length-prefixed string.
    pub fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
    }

    /// An optional string that is often the same as `prev` (the same field of the item
    /// before): 0 absent, 1 same as `prev`, else length + 2 and the bytes.
    pub fn repeat_str(&mut self, s: Option<&str>, prev: Option<&str>) {
        match s {
            None => self.u64(0),
            Some(s) if prev == Some(s) => self.u64(1),
            Some(s) => {
                self.u64(s.len() as u64 + 2);
                self.out.extend_from_slice(s.as_bytes());
            }
        }
    }
}

/// Reads binary fields written by [`Writer`].
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`, which must start with `format`.
    pub fn new(bytes: &'a [u8], format: u8) -> Result<Reader<'a>, String> {
        match bytes.first() {
            Some(&f) if f == format => Ok(Reader { bytes, pos: 1 }),
            Some(f) => Err(format!("unknown format byte {f:#04x}")),
            None => Err("empty value".into()),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!("truncated at byte {}", self.pos));
        };
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// An unsigned varint.
    pub fn u64(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("varint too long at byte {}", self.pos))
    }

    /// A length or count, checked against the bytes left (each item takes at least a byte).
    pub fn count(&mut self) -> Result<usize, String> {
        let n = self.u64()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.bytes.len() - self.pos)
            .ok_or_else(|| format!("length {n} beyond the value at byte {}", self.pos))
    }

    /// A signed varint (zigzag).
    pub fn i64(&mut self) -> Result<i64, String> {
        let v = self.u64()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// `N` bytes written by [`Writer::raw`].
    pub fn raw<const N: usize>(&mut self) -> Result<[u8; N], String> {
        self.take(N)?
            .try_into()
            .map_err(|_| format!("truncated at byte {}", self.pos))
    }

    /// A float.
    pub fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_le_bytes(self.raw()?))
    }

    fn utf8(&mut self, n: usize) -> Result<String, String> {
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|e| format!("string is not UTF-8: {e}"))
    }

    /// A length-prefixed string.
    pub fn str(&mut self) -> Result<String, String> {
        let n = self.count()?;
        self.utf8(n)
    }

    /// A string written by [`Writer::repeat_str`].
    pub fn repeat_str(&mut self, prev: Option<&str>) -> Result<Option<String>, String> {
        match self.u64()? {
            0 => Ok(None),
            1 => prev
                .map(|p| Some(p.to_string()))
                .ok_or_else(|| "repeats a string that is absent".to_string()),
            n => {
                let n = usize::try_from(n - 2).map_err(|e| e.to_string())?;
                self.utf8(n).map(Some)
            }
        }
    }

    /// Fails unless every byte was read.
    pub fn finish(self) -> Result<(), String> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(format!(
                "{} bytes left over",
                self.bytes.len().saturating_sub(self.pos)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip_and_bad_input_is_an_error() {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out, 0xA0);
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            w.u64(v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, 1_767_225_600_000] {
            w.i64(v);
        }
        w.f64(-33.8688);
        w.str("Zürich");
        w.repeat_str(Some("a"), None);
        w.repeat_str(Some("a"), Some("a"));
        w.repeat_str(None, Some("a"));
        let mut r = Reader::new(&out, 0xA0).unwrap();
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(r.u64().unwrap(), v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, 1_767_225_600_000] {
            assert_eq!(r.i64().unwrap(), v);
        }
        assert_eq!(r.f64().unwrap(), -33.8688);
        assert_eq!(r.str().unwrap(), "Zürich");
        assert_eq!(r.repeat_str(None).unwrap().as_deref(), Some("a"));
        assert_eq!(r.repeat_str(Some("a")).unwrap().as_deref(), Some("a"));
        assert_eq!(r.repeat_str(Some("a")).unwrap(), None);
        r.finish().unwrap();

        assert!(Reader::new(&out, 0xA1).is_err(), "wrong format byte");
        assert!(Reader::new(&[], 0xA0).is_err());
        let mut r = Reader::new(&[0xA0, 0x80], 0xA0).unwrap();
        assert!(r.u64().is_err(), "truncated varint");
        let mut r = Reader::new(&[0xA0, 50, b'x'], 0xA0).unwrap();
        assert!(r.str().is_err(), "length beyond the value");
        let mut r = Reader::new(&[0xA0, 1], 0xA0).unwrap();
        assert!(
            r.repeat_str(None).is_err(),
            "repeat without a previous value"
        );
    }
}
