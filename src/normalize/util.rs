//! Shared helpers of the normalizers: getters on dotted raw-record paths, required
//! field extraction with typed errors, time and IP parsing, the identity key and the
//! activity -> OCSF class table.
//!
//! To add a helper: keep it pure and total (no panics on any JSON), and give it a unit test
//! at the bottom of this file.

use std::net::IpAddr;

use crate::json::{Fields, JsonContainerTrait, JsonValueTrait, Raw, Value, ValueRef};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use super::NormalizeError;
use crate::model::{Activity, Endpoint, EventClass, RecordKind, Status};

/// Where a dotted path starts: any JSON value, or a record's root with its members indexed
/// ([`Fields`]), which a normalizer builds once when it reads many fields of one record.
pub(crate) trait Root<'a>: Copy {
    /// The member named `key`, when this is an object that has one.
    fn member(self, key: &str) -> Option<&'a Value>;
}

impl<'a> Root<'a> for &'a Value {
    fn member(self, key: &str) -> Option<&'a Value> {
        if self.is_object() {
            self.get(key)
        } else {
            None
        }
    }
}

impl<'a> Root<'a> for &&'a Value {
    fn member(self, key: &str) -> Option<&'a Value> {
        (*self).member(key)
    }
}

impl<'a> Root<'a> for &Fields<'a> {
    fn member(self, key: &str) -> Option<&'a Value> {
        self.get(key)
    }
}

impl<'a> Root<'a> for &'a Raw {
    fn member(self, key: &str) -> Option<&'a Value> {
        self.fields().get(key)
    }
}

/// Declares a struct of the members a normalizer reads from one JSON object: each field holds
/// the first member named its key, like [`get`] would find it. A record's root is already
/// indexed ([`Fields`], carried by its [`Raw`]), so `in_fields` looks each key up there; a
/// nested object is filled by [`of`](#) in ONE walk over its members (a lookup per field
/// would walk them again each time: sonic-rs compares keys one by one).
///
/// `repeated` tells whether a key named here occurs more than once (ambiguous JSON).
macro_rules! members {
    ($(#[$doc:meta])* $name:ident { $($field:ident: $key:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Default, Clone, Copy)]
        struct $name<'v> {
            $($field: Option<&'v $crate::json::Value>,)*
            #[allow(dead_code)]
            repeated: bool,
        }

        impl<'v> $name<'v> {
            /// The members of the object `f` indexes, looked up (walked once, as [`of`](#)
            /// does, when names repeat in it, to tell whether one of these does).
            #[allow(dead_code)]
            fn in_fields(f: &$crate::json::Fields<'v>) -> Self {
                if f.repeated() {
                    return Self::of(f.object());
                }
                Self {
                    $($field: f.get($key),)*
                    repeated: false,
                }
            }

            /// The members of `v`; all `None` when `v` is not an object.
            #[allow(dead_code)]
            fn of(v: Option<&'v $crate::json::Value>) -> Self {
                Self::until(v, |_| false)
            }

            /// The members of `v` up to the first that makes `done` hold (what the caller
            /// concludes from them then holds whatever follows).
            #[inline]
            fn until(v: Option<&'v $crate::json::Value>, done: impl Fn(&Self) -> bool) -> Self {
                let mut m = Self::default();
                let Some(obj) = v.and_then(|v| {
                    <$crate::json::Value as $crate::json::JsonContainerTrait>::as_object(v)
                }) else {
                    return m;
                };
                for (k, val) in obj.iter() {
                    let slot = match k {
                        $($key => &mut m.$field,)*
                        _ => continue,
                    };
                    if slot.is_none() {
                        *slot = Some(val);
                        if done(&m) {
                            break;
                        }
                    } else {
                        m.repeated = true;
                    }
                }
                m
            }
        }
    };
}
pub(crate) use members;

/// The member `key` of `v` when `v` is an object (one lookup: for an object read for one
/// field only).
pub(crate) fn member<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    v.and_then(|v| v.member(key))
}

/// A non-empty string, trimmed; `None` for absent, null, empty or non-string values (what
/// [`str_at`] reads at a path).
#[inline]
pub(crate) fn str_of(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
        .map(trim)
        .filter(|s| !s.is_empty())
}

/// `str::trim`, skipped when both ends are visible ASCII (nearly every logged value): such a
/// byte is a whole char and no whitespace, so `trim` would return `s` itself.
#[inline]
fn trim(s: &str) -> &str {
    match s.as_bytes() {
        [first, .., last] if first.is_ascii_graphic() && last.is_ascii_graphic() => s,
        [only] if only.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// [`str_of`] as an owned `String`.
#[inline]
pub(crate) fn string_of(v: Option<&Value>) -> Option<String> {
    str_of(v).map(str::to_owned)
}

/// A scalar as text (what [`text_at`] reads at a path).
pub(crate) fn text_of(v: Option<&Value>) -> Option<String> {
    match v?.as_ref() {
        ValueRef::String(s) if !trim(s).is_empty() => Some(trim(s).to_owned()),
        ValueRef::Number(n) => Some(n.to_string()),
        ValueRef::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A boolean (what [`bool_at`] reads at a path).
pub(crate) fn bool_of(v: Option<&Value>) -> Option<bool> {
    match v?.as_ref() {
        ValueRef::Bool(b) => Some(b),
        ValueRef::String(s) => parse_bool(s),
        _ => None,
    }
}

/// The elements of an array; none for anything else.
pub(crate) fn array_of(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array)
        .map(|a| &a[..])
        .unwrap_or_default()
}

/// The value at a dotted path (`userIdentity.sessionContext.sessionIssuer.arn`); object keys
/// only. `None` when any step is missing or not an object.
pub(crate) fn get<'a>(v: impl Root<'a>, path: &str) -> Option<&'a Value> {
    // Paths are short: a byte loop finds the dots faster than `str::split`.
    let dot = |s: &str| s.bytes().position(|b| b == b'.');
    let Some(end) = dot(path) else {
        return v.member(path);
    };
    let mut cur = v.member(&path[..end])?;
    let mut rest = &path[end + 1..];
    while let Some(end) = dot(rest) {
        cur = cur.member(&rest[..end])?;
        rest = &rest[end + 1..];
    }
    cur.member(rest)
}

/// A non-empty string at `path`; `None` for absent, null, empty or non-string values.
pub(crate) fn str_at<'a>(v: impl Root<'a>, path: &str) -> Option<&'a str> {
    str_of(get(v, path))
}

/// [`str_at`] as an owned `String`.
pub(crate) fn string_at<'a>(v: impl Root<'a>, path: &str) -> Option<String> {
    str_at(v, path).map(str::to_owned)
}

/// A scalar at `path` as text: strings as they are, numbers and booleans printed. Some
/// providers log ids and codes as either.
pub(crate) fn text_at<'a>(v: impl Root<'a>, path: &str) -> Option<String> {
    text_of(get(v, path))
}

/// A boolean at `path`, accepting `true`/`false` and the strings `"true"`/`"false"` (any case).
pub(crate) fn bool_at<'a>(v: impl Root<'a>, path: &str) -> Option<bool> {
    bool_of(get(v, path))
}

/// `"true"`/`"yes"` -> true, `"false"`/`"no"` -> false, any case; else `None`.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" => Some(true),
        "false" | "no" => Some(false),
        _ => None,
    }
}

/// Fails with `Invalid { field: "$" }` unless the record is a JSON object.
pub(crate) fn require_object(v: &Value, kind: RecordKind) -> Result<(), NormalizeError> {
    if v.is_object() {
        Ok(())
    } else {
        Err(NormalizeError::Invalid {
            kind,
            field: "$",
            message: format!("expected a JSON object, found {}", type_name(v)),
        })
    }
}

/// A required non-empty string: `Missing` when absent or null, `Invalid` when of another
/// type or empty.
pub(crate) fn req_str<'a>(
    v: impl Root<'a>,
    path: &'static str,
    kind: RecordKind,
) -> Result<&'a str, NormalizeError> {
    required_str(get(v, path), path, kind)
}

/// [`req_str`] of a value found already; `path` names it in errors.
pub(crate) fn required_str<'a>(
    v: Option<&'a Value>,
    path: &'static str,
    kind: RecordKind,
) -> Result<&'a str, NormalizeError> {
    match v.map(Value::as_ref) {
        None | Some(ValueRef::Null) => Err(NormalizeError::Missing { kind, field: path }),
        Some(ValueRef::String(s)) if !trim(s).is_empty() => Ok(trim(s)),
        Some(ValueRef::String(_)) => Err(NormalizeError::Invalid {
            kind,
            field: path,
            message: "empty string".to_owned(),
        }),
        Some(other) => Err(NormalizeError::Invalid {
            kind,
            field: path,
            message: format!("expected a string, found {}", ref_type_name(&other)),
        }),
    }
}

/// A required id: a non-empty string, or a number (Google logs int64 ids either way).
pub(crate) fn req_id<'a>(
    v: impl Root<'a>,
    path: &'static str,
    kind: RecordKind,
) -> Result<String, NormalizeError> {
    required_id(get(v, path), path, kind)
}

/// [`req_id`] of a value found already; `path` names it in errors.
pub(crate) fn required_id(
    v: Option<&Value>,
    path: &'static str,
    kind: RecordKind,
) -> Result<String, NormalizeError> {
    match v.map(Value::as_ref) {
        Some(ValueRef::Number(n)) => Ok(n.to_string()),
        _ => required_str(v, path, kind).map(str::to_owned),
    }
}

/// A required timestamp (RFC 3339; a missing offset is read as UTC).
pub(crate) fn req_time<'a>(
    v: impl Root<'a>,
    path: &'static str,
    kind: RecordKind,
) -> Result<DateTime<Utc>, NormalizeError> {
    required_time(get(v, path), path, kind)
}

/// [`req_time`] of a value found already; `path` names it in errors.
pub(crate) fn required_time(
    v: Option<&Value>,
    path: &'static str,
    kind: RecordKind,
) -> Result<DateTime<Utc>, NormalizeError> {
    let s = required_str(v, path, kind)?;
    parse_time(s).ok_or_else(|| NormalizeError::Invalid {
        kind,
        field: path,
        message: format!("not an RFC 3339 timestamp: {:?}", truncate(s, 64)),
    })
}

/// Parses an RFC 3339 timestamp, or one without offset (taken as UTC).
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Some(t) = parse_utc(s) {
        return Some(t);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

/// The common shape of provider timestamps, `YYYY-MM-DDTHH:MM:SS[.f]Z` with 1 to 9 fraction
/// digits, read without chrono's general parser (a tenth of its cost). Anything else, a leap
/// second included, is `None` and left to chrono, which gives the same instant for every
/// string read here.
fn parse_utc(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| {
        b[range].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')]
        .iter()
        .any(|&(i, c)| b[i] != c)
    {
        return None;
    }
    let nano = match b.len() {
        20 => 0,
        22..=30 if b[19] == b'.' => num(20..b.len() - 1)? * 10u32.pow(30 - b.len() as u32),
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let time = NaiveTime::from_hms_nano_opt(num(11..13)?, num(14..16)?, num(17..19)?, nano)?;
    Some(NaiveDateTime::new(date, time).and_utc())
}

/// Parses a logged source address. Only canonical IPv4/IPv6 text parses: octets with
/// leading zeros (`075.050.255.67`, as anonymised logs have them) are ambiguous (octal or
/// decimal?) and, like `AWS Internal`, service names, `private` or `gce-internal-ip`,
/// give `None`. Brackets around IPv6 (`[::1]`) are accepted.
pub(crate) fn parse_ip(raw: &str) -> Option<IpAddr> {
    let s = raw.trim();
    let s = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

/// An [`Endpoint`] from the logged address text and user agent; enrichment fills the rest.
pub(crate) fn endpoint(raw_ip: Option<&str>, user_agent: Option<&str>) -> Endpoint {
    Endpoint {
        ip: raw_ip.and_then(parse_ip),
        raw: raw_ip.map(str::to_owned),
        user_agent: user_agent.map(str::to_owned),
        ..Endpoint::default()
    }
}

/// A plausible email / UPN: `local@domain` with no spaces, slashes or colons.
pub(crate) fn is_email(s: &str) -> bool {
    // Every byte looked for is ASCII, so bytes stand for chars.
    let b = s.as_bytes();
    match b.iter().position(|&c| c == b'@') {
        Some(at) => {
            let domain = &b[at + 1..];
            at > 0
                && domain.contains(&b'.')
                && !domain.contains(&b'@')
                && !b.iter().any(|c| matches!(c, b' ' | b'/' | b':'))
        }
        None => false,
    }
}

/// The identity key: the lowercased email/UPN when there is one, else the first principal
/// uid given (as logged: ARNs are case-sensitive), else the empty string (the record names
/// no principal at all).
pub(crate) fn identity_key(email: Option<&str>, uids: &[Option<&str>]) -> String {
    if let Some(e) = email.filter(|e| !e.trim().is_empty()) {
        let e = e.trim();
        // The same text as `to_lowercase` when ASCII, without its per-char decoding.
        return if e.is_ascii() {
            e.to_ascii_lowercase()
        } else {
            e.to_lowercase()
        };
    }
    uids.iter()
        .flatten()
        .map(|u| u.trim())
        .find(|u| !u.is_empty())
        .map(str::to_owned)
        .unwrap_or_default()
}

/// True for the all-zero GUID Entra logs where it has no principal.
pub(crate) fn is_nil_guid(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c == '0' || c == '-')
}

/// True for a GUID-shaped string (8-4-4-4-12 hex digits).
pub(crate) fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The OCSF class of an activity. One table for every provider: sign-ins are
/// Authentication, credential and MFA changes Account Change, grants and consents User Access
/// Management, the rest API Activity.
pub(crate) fn class_of(activity: Activity) -> EventClass {
    match activity {
        Activity::SignIn => EventClass::Authentication,
        Activity::CredentialCreate | Activity::MfaChange => EventClass::AccountChange,
        Activity::PrivilegeGrant | Activity::ConsentGrant => EventClass::UserAccess,
        Activity::LoggingChange | Activity::ApiCall => EventClass::ApiActivity,
    }
}

/// `Success` / `Failure` from a result word (`success`, `failure`, `timeout`, ...).
pub(crate) fn status_from_word(word: Option<&str>) -> Status {
    match word.map(str::to_ascii_lowercase).as_deref() {
        Some("success" | "succeeded") => Status::Success,
        Some("failure" | "failed" | "timeout") => Status::Failure,
        _ => Status::Unknown,
    }
}

/// The first `max` characters of `s` (for error messages).
pub(crate) fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The JSON type name of a value, for error messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    ref_type_name(&v.as_ref())
}

pub(crate) fn ref_type_name(v: &ValueRef<'_>) -> &'static str {
    match v {
        ValueRef::Null => "null",
        ValueRef::Bool(_) => "a boolean",
        ValueRef::Number(_) => "a number",
        ValueRef::String(_) => "a string",
        ValueRef::Array(_) => "an array",
        ValueRef::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::json;

    #[test]
    fn paths_and_getters() {
        let v = json!({"a": {"b": {"c": " x "}, "n": 5, "t": "TRUE", "e": ""}});
        assert_eq!(str_at(&v, "a.b.c"), Some("x"));
        assert_eq!(str_at(&v, "a.e"), None);
        assert_eq!(str_at(&v, "a.b.c.d"), None);
        assert_eq!(text_at(&v, "a.n").as_deref(), Some("5"));
        assert_eq!(bool_at(&v, "a.t"), Some(true));
        assert_eq!(get(&v, "a.missing"), None);
        // The same through a record's indexed root, and paths with empty keys.
        let f = Fields::new(&v);
        assert_eq!(str_at(&f, "a.b.c"), Some("x"));
        assert_eq!(get(&f, "a.n").and_then(|n| n.as_u64()), Some(5));
        assert_eq!(get(&f, "a.b.c.d"), None);
        assert_eq!(get(&f, "a."), None);
        assert_eq!(get(&f, ".a"), None);
        assert_eq!(get(&v, ""), None);
        let dotted = json!({"": {"": 1}});
        assert_eq!(get(&dotted, ".").and_then(|n| n.as_u64()), Some(1));
    }

    #[test]
    fn required_fields_name_the_field() {
        let v = json!({"t": 3, "e": "", "s": "2024-01-02T03:04:05Z", "bad": "yesterday"});
        let k = RecordKind::Cloudtrail;
        assert_eq!(
            req_str(&v, "x", k),
            Err(NormalizeError::Missing {
                kind: k,
                field: "x"
            })
        );
        assert!(matches!(
            req_str(&v, "t", k),
            Err(NormalizeError::Invalid { field: "t", .. })
        ));
        assert!(matches!(
            req_str(&v, "e", k),
            Err(NormalizeError::Invalid { field: "e", .. })
        ));
        assert!(matches!(
            req_time(&v, "bad", k),
            Err(NormalizeError::Invalid { field: "bad", .. })
        ));
        assert_eq!(
            req_time(&v, "s", k).map(|t| t.timestamp()),
            Ok(1_704_164_645)
        );
        assert_eq!(req_id(&v, "t", k).as_deref(), Ok("3"));
    }

    #[test]
    fn times_with_and_without_offset() {
        assert!(parse_time("2021-08-02T13:29:25.9830000Z").is_some());
        assert!(parse_time("2021-08-02T13:29:25.983+02:00").is_some());
        assert_eq!(
            parse_time("2021-08-02T13:29:25"),
            parse_time("2021-08-02T13:29:25Z")
        );
        assert!(parse_time("02/08/2021").is_none());
    }

    #[test]
    fn the_fast_time_reader_agrees_with_chrono() {
        let chrono = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        };
        for s in [
            "2025-11-01T00:00:00Z",
            "2025-11-01T00:00:00.050Z",
            "2021-08-02T13:29:25.9830000Z",
            "2021-08-02T13:29:25.1Z",
            "2021-08-02T13:29:25.123456789Z",
            "2024-02-29T23:59:59.999Z",
            "9999-12-31T23:59:59Z",
            "0000-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_utc(s), chrono(s), "{s}");
            assert!(parse_utc(s).is_some(), "{s}");
        }
        // Left to chrono (or refused by both): leap seconds, more than 9 fraction digits,
        // other separators and offsets, impossible dates and times, stray characters.
        for s in [
            "2016-12-31T23:59:60Z",
            "2016-12-31T23:59:60.5Z",
            "2021-08-02T13:29:25.1234567891Z",
            "2021-08-02t13:29:25z",
            "2021-08-02 13:29:25Z",
            "2021-08-02T13:29:25+00:00",
            "2021-08-02T13:29:25.Z",
            "2023-02-29T00:00:00Z",
            "2021-13-02T13:29:25Z",
            "2021-08-02T24:00:00Z",
            "2021-08-02T13:60:00Z",
            "2021-08-02T13:29:2xZ",
            "+021-08-02T13:29:25Z",
            "2021-08-02T13:29:25.12a4Z",
            "2021-08-02T13:29:25",
            "",
        ] {
            assert_eq!(parse_utc(s), None, "{s}");
            assert_eq!(
                parse_time(s),
                chrono(s).or_else(|| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                    .ok()
                    .map(|n| n.and_utc())),
                "{s}"
            );
        }
    }

    #[test]
    fn ips_parse_only_when_canonical() {
        assert_eq!(parse_ip("75.50.255.67"), "75.50.255.67".parse().ok());
        assert_eq!(parse_ip("075.050.255.67"), None);
        assert_eq!(parse_ip("AWS Internal"), None);
        assert_eq!(parse_ip("private"), None);
        assert_eq!(parse_ip("gce-internal-ip"), None);
        assert_eq!(parse_ip("[2001:db8::1]"), "2001:db8::1".parse().ok());
        assert_eq!(trim(" a "), "a");
        assert_eq!(trim("a\u{a0}"), "a");
        assert_eq!(trim("\t"), "");
        assert_eq!(trim("x"), "x");
        let e = endpoint(Some("08.1.250.216"), Some("ua"));
        assert_eq!((e.ip, e.raw.as_deref()), (None, Some("08.1.250.216")));
    }

    #[test]
    fn identity_keys() {
        assert_eq!(
            identity_key(Some("Alice@Corp.Example"), &[Some("id")]),
            "alice@corp.example"
        );
        assert_eq!(
            identity_key(None, &[None, Some("arn:aws:iam::1:user/Bob")]),
            "arn:aws:iam::1:user/Bob"
        );
        assert_eq!(identity_key(Some(" "), &[]), "");
        assert!(is_email("a.b@example.com"));
        assert!(!is_email("arn:aws:sts::1:assumed-role/r/a@b.c"));
        assert!(!is_email("aws-go-sdk-1722"));
        assert!(is_guid("26be570a-ae82-4189-b4e2-a37c6808512d"));
        assert!(!is_guid("https://graph.microsoft.com"));
        assert!(is_nil_guid("00000000-0000-0000-0000-000000000000"));
    }
}
