//! `stdout`: findings on standard output, as a terminal-safe block or as OCSF JSON lines.

use std::fmt::Write as _;
use std::io::Write;

use super::escape::terminal;
use super::{AlertError, Format, Notifier};
use crate::model::{Finding, ocsf};

/// Writes findings to standard output.
pub struct Stdout {
    format: Format,
}

impl Stdout {
    /// A stdout notifier in the given format.
    pub fn new(format: Format) -> Stdout {
        Stdout { format }
    }
}

/// Renders a finding as a terminal-safe text block: every log-derived string is escaped.
pub fn render_table(f: &Finding) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "[{}] {}  {}",
        f.severity.as_str().to_uppercase(),
        terminal(&f.title),
        f.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let _ = writeln!(
        s,
        "  detector: {}   finding: {}",
        terminal(&f.detector),
        f.uid
    );
    if let Some(id) = &f.identity {
        let _ = writeln!(s, "  identity: {}", terminal(id));
    }
    for k in ["distance_km", "hours", "speed_kmh", "scopes", "app_name"] {
        if let Some(v) = f.data.get(k) {
            let text = match v {
                serde_json::Value::String(x) => x.clone(),
                other => other.to_string(),
            };
            let _ = writeln!(s, "  {k}: {}", terminal(&text));
        }
    }
    for e in &f.evidence {
        let place = e
            .geo
            .as_ref()
            .map(|g| {
                format!(
                    " {}{}",
                    g.city
                        .as_deref()
                        .map(|c| format!("{}, ", terminal(c)))
                        .unwrap_or_default(),
                    terminal(g.country.as_deref().unwrap_or("?"))
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  - {} {} {} from {}{}",
            e.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            e.provider.as_str(),
            terminal(&e.action),
            terminal(e.src_ip.as_deref().unwrap_or("-")),
            place
        );
    }
    if let Some(notes) = f.data.get(crate::alert::facts::RESPONSE_KEY).and_then(|v| {
        serde_json::from_value::<Vec<crate::alert::facts::ResponseNote>>(v.clone()).ok()
    }) {
        for n in notes {
            let _ = writeln!(
                s,
                "  response: {} {} on {}{}",
                terminal(&n.status),
                terminal(&n.action),
                terminal(&n.target),
                n.reason
                    .map(|r| format!(" ({})", terminal(&r)))
                    .unwrap_or_default()
            );
        }
    }
    if !f.attacks.is_empty() {
        let t: Vec<&str> = f.attacks.iter().map(|a| a.technique.as_str()).collect();
        let _ = writeln!(s, "  att&ck: {}", terminal(&t.join(", ")));
    }
    s
}

#[async_trait::async_trait]
impl Notifier for Stdout {
    fn name(&self) -> &'static str {
        "stdout"
    }

    async fn notify(&self, finding: &Finding) -> Result<(), AlertError> {
        let text = match self.format {
            Format::Table => render_table(finding),
            Format::Ocsf => format!("{}\n", ocsf::detection_finding(finding)),
        };
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .map_err(|source| AlertError::Io {
                notifier: "stdout",
                source,
            })
    }
}
