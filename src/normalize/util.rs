//! Shared helpers of the normalizers: getters on dotted raw-record paths, required
//! field extraction with typed errors, time and IP parsing, the identity key and the
//! activity -> OCSF class table.
//!
//! To add a helper: keep it pure and total (no panics on any JSON), and give it a unit test
//! at the bottom of this file.

use std::net::IpAddr;

use crate::json::{Fields, JsonValueTrait, Value, ValueRef};
use chrono::{DateTime, NaiveDateTime, Utc};

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
    get(v, path)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// [`str_at`] as an owned `String`.
pub(crate) fn string_at<'a>(v: impl Root<'a>, path: &str) -> Option<String> {
    str_at(v, path).map(str::to_owned)
}

/// A scalar at `path` as text: strings as they are, numbers and booleans printed. Some
/// providers log ids and codes as either.
pub(crate) fn text_at<'a>(v: impl Root<'a>, path: &str) -> Option<String> {
    match get(v, path)?.as_ref() {
        ValueRef::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        ValueRef::Number(n) => Some(n.to_string()),
        ValueRef::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A boolean at `path`, accepting `true`/`false` and the strings `"true"`/`"false"` (any case).
pub(crate) fn bool_at<'a>(v: impl Root<'a>, path: &str) -> Option<bool> {
    match get(v, path)?.as_ref() {
        ValueRef::Bool(b) => Some(b),
        ValueRef::String(s) => parse_bool(s),
        _ => None,
    }
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
    match get(v, path).map(Value::as_ref) {
        None | Some(ValueRef::Null) => Err(NormalizeError::Missing { kind, field: path }),
        Some(ValueRef::String(s)) if !s.trim().is_empty() => Ok(s.trim()),
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
    match get(v, path).map(Value::as_ref) {
        Some(ValueRef::Number(n)) => Ok(n.to_string()),
        _ => req_str(v, path, kind).map(str::to_owned),
    }
}

/// A required timestamp (RFC 3339; a missing offset is read as UTC).
pub(crate) fn req_time<'a>(
    v: impl Root<'a>,
    path: &'static str,
    kind: RecordKind,
) -> Result<DateTime<Utc>, NormalizeError> {
    let s = req_str(v, path, kind)?;
    parse_time(s).ok_or_else(|| NormalizeError::Invalid {
        kind,
        field: path,
        message: format!("not an RFC 3339 timestamp: {:?}", truncate(s, 64)),
    })
}

/// Parses an RFC 3339 timestamp, or one without offset (taken as UTC).
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
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
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !s.contains([' ', '/', ':'])
        }
        None => false,
    }
}

/// The identity key: the lowercased email/UPN when there is one, else the first principal
/// uid given (as logged: ARNs are case-sensitive), else the empty string (the record names
/// no principal at all).
pub(crate) fn identity_key(email: Option<&str>, uids: &[Option<&str>]) -> String {
    if let Some(e) = email.filter(|e| !e.trim().is_empty()) {
        return e.trim().to_lowercase();
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
    fn ips_parse_only_when_canonical() {
        assert_eq!(parse_ip("75.50.255.67"), "75.50.255.67".parse().ok());
        assert_eq!(parse_ip("075.050.255.67"), None);
        assert_eq!(parse_ip("AWS Internal"), None);
        assert_eq!(parse_ip("private"), None);
        assert_eq!(parse_ip("gce-internal-ip"), None);
        assert_eq!(parse_ip("[2001:db8::1]"), "2001:db8::1".parse().ok());
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
