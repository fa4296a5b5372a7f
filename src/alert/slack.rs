//! `slack`: findings as Block Kit messages, through an incoming webhook or a bot token with
//! `chat.postMessage`. With a bot token each incident gets one thread: the first message's
//! `ts` is stored (in the state store when there is one, namespace `slack-thread`, 7 days,
//! so threads survive restarts and Lambda invocations) and later findings of the same
//! incident are posted as replies.
//! Every log-derived string goes through [`escape::slack`](super::escape::slack).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::escape::{slack as esc, truncate};
use super::facts::Facts;
use super::{AlertError, Notifier};
use crate::cloud::http::{send, send_secret_url};
use crate::cloud::retry::RetryPolicy;
use crate::config::Secret;
use crate::model::Finding;
use crate::state::StateStore;

/// How a Slack notifier delivers.
pub enum Delivery {
    /// An incoming webhook URL (a secret).
    Webhook(Secret),
    /// A bot token, the channel, and the Web API base URL (`https://slack.com/api`).
    Bot {
        /// `xoxb-...` token.
        token: Secret,
        /// Channel id or name.
        channel: String,
        /// Web API base URL.
        api_base_url: String,
    },
}

/// Posts findings to Slack.
pub struct Slack {
    http: reqwest::Client,
    delivery: Delivery,
    retry: RetryPolicy,
    threads: Mutex<HashMap<String, String>>,
    state: Option<Arc<dyn StateStore>>,
}

/// State namespace of stored thread timestamps.
pub const THREAD_NS: &str = "slack-thread";
const THREAD_TTL_DAYS: i64 = 7;

impl Slack {
    /// A Slack notifier over the shared HTTP client.
    pub fn new(http: reqwest::Client, delivery: Delivery, retry: RetryPolicy) -> Slack {
        Slack {
            http,
            delivery,
            retry,
            threads: Mutex::new(HashMap::new()),
            state: None,
        }
    }

    /// Stores thread timestamps in `state`, so threads outlive the process.
    pub fn with_state(mut self, state: Option<Arc<dyn StateStore>>) -> Slack {
        self.state = state;
        self
    }

    fn stored_thread(&self, key: &str) -> Option<String> {
        let state = self.state.as_ref()?;
        match state.get(THREAD_NS, key, chrono::Utc::now()) {
            Ok(v) => v.map(|v| String::from_utf8_lossy(&v.value).into_owned()),
            Err(e) => {
                tracing::warn!(error = %e, "slack thread lookup failed; posting a new thread");
                None
            }
        }
    }

    fn store_thread(&self, key: &str, ts: &str) {
        if let Some(state) = &self.state {
            let now = chrono::Utc::now();
            let expires = now + chrono::Duration::days(THREAD_TTL_DAYS);
            if let Err(e) = state.put_if_absent(THREAD_NS, key, ts.as_bytes(), Some(expires), now) {
                tracing::warn!(error = %e, "slack thread could not be stored");
            }
        }
    }
}

/// Slack's limit for a header block's text.
pub const MAX_HEADER: usize = 150;
/// Slack's limit for a section's text is 3000 characters; stay under it.
pub const MAX_SECTION: usize = 2900;

/// The incident a finding belongs to: `data.incident` when the detector set one, else the
/// identity, else the finding itself.
pub fn incident_key(f: &Finding) -> String {
    f.data
        .get("incident")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .or_else(|| f.identity.clone())
        .unwrap_or_else(|| f.uid.clone())
}

fn field(label: &str, value: &str) -> Value {
    json!({"type": "mrkdwn", "text": format!("*{label}*\n{value}")})
}

/// The Block Kit payload of a finding (without channel or thread).
pub fn blocks(f: &Finding) -> Value {
    let x = Facts::of(f);
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&esc(&format!("{} {}", x.severity, x.title)), MAX_HEADER), "emoji": false}}),
        json!({"type": "section", "fields": [
            field("Severity", &esc(&x.severity)),
            field("Identity", &esc(&x.identity)),
            field("Detector", &format!("`{}`", esc(&x.detector))),
            field("Finding", &format!("`{}`", esc(&x.uid))),
        ]}),
    ];
    let mut where_lines = Vec::new();
    for p in &x.places {
        let map = p
            .coords
            .map(|(lat, lon)| {
                format!(" <https://www.openstreetmap.org/?mlat={lat:.4}&mlon={lon:.4}&zoom=6|map>")
            })
            .unwrap_or_default();
        where_lines.push(format!(
            "• {} `{}` from {} — {}{}{}",
            esc(&p.time),
            esc(&p.action),
            esc(p.ip.as_deref().unwrap_or("-")),
            esc(&p.label),
            map,
            if p.success { "" } else { " (failed)" }
        ));
        if let Some(ua) = &p.user_agent {
            where_lines.push(format!(
                "    UA: {}",
                esc(&super::escape::truncate(ua, 120))
            ));
        }
    }
    if x.more_evidence > 0 {
        where_lines.push(format!("… and {} more events", x.more_evidence));
    }
    if let (Some(d), Some(v)) = (x.distance_km, x.speed_kmh) {
        where_lines.insert(0, format!("*{d:.0} km* apart, *{v:.0} km/h* needed"));
    }
    if !where_lines.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&format!("*Evidence*\n{}", where_lines.join("\n")), MAX_SECTION)}}));
    }
    if !x.attacks.is_empty() {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("ATT&CK: {}", esc(&x.attacks.join(", ")))}]}));
    }
    let response: Vec<String> = x
        .response
        .iter()
        .map(|r| {
            let mut line = format!(
                "• *{}* `{}` on {}",
                esc(&r.status),
                esc(&r.action),
                esc(&r.target)
            );
            if let Some(reason) = &r.reason {
                line.push_str(&format!(" — {}", esc(reason)));
            }
            if let Some(u) = &r.undo {
                line.push_str(&format!("\n    undo: `{}`", esc(u)));
            }
            line
        })
        .collect();
    blocks.push(
        json!({"type": "section", "text": {"type": "mrkdwn", "text": if response.is_empty() {
            "*picket did*\nnothing (no playbook matched)".to_string()
        } else {
            format!("*picket did*\n{}", response.join("\n"))
        }}}),
    );
    json!({
        "text": esc(&format!("[{}] {} — {}", x.severity, x.title, x.identity)),
        "blocks": blocks,
    })
}

#[async_trait::async_trait]
impl Notifier for Slack {
    fn name(&self) -> &'static str {
        "slack"
    }

    async fn notify(&self, finding: &Finding) -> Result<(), AlertError> {
        let mut payload = blocks(finding);
        let fail = |message: String| AlertError::Config {
            notifier: "slack",
            message,
        };
        match &self.delivery {
            Delivery::Webhook(url) => {
                let body = payload.to_string();
                send_secret_url(&self.retry, "POST", url.expose(), &[], || {
                    self.http
                        .post(url.expose())
                        .header("content-type", "application/json")
                        .body(body.clone())
                })
                .await
                .map_err(|e| AlertError::Send {
                    notifier: "slack",
                    message: e.to_string(),
                })?;
            }
            Delivery::Bot {
                token,
                channel,
                api_base_url,
            } => {
                let incident = format!("{channel}/{}", incident_key(finding));
                let mut threads = self.threads.lock().await;
                if !threads.contains_key(&incident)
                    && let Some(ts) = self.stored_thread(&incident)
                {
                    threads.insert(incident.clone(), ts);
                }
                payload["channel"] = json!(channel);
                if let Some(ts) = threads.get(&incident) {
                    payload["thread_ts"] = json!(ts);
                }
                let url = format!("{}/chat.postMessage", api_base_url.trim_end_matches('/'));
                let body = payload.to_string();
                let answer = send(&self.retry, "POST", &url, &[], || {
                    self.http
                        .post(&url)
                        .bearer_auth(token.expose())
                        .header("content-type", "application/json; charset=utf-8")
                        .body(body.clone())
                })
                .await
                .map_err(|e| AlertError::Send {
                    notifier: "slack",
                    message: e.to_string(),
                })?;
                let v = answer.json(&url).map_err(|e| fail(e.to_string()))?;
                if v["ok"] != json!(true) {
                    return Err(AlertError::Send {
                        notifier: "slack",
                        message: format!(
                            "chat.postMessage: {}",
                            super::escape::terminal(v["error"].as_str().unwrap_or("not ok"))
                        ),
                    });
                }
                if let Some(ts) = v["ts"].as_str()
                    && !threads.contains_key(&incident)
                {
                    self.store_thread(&incident, ts);
                    threads.insert(incident, ts.to_string());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Evidence, GeoLocation, Provider, Severity};

    fn hostile() -> Finding {
        let ev = Evidence {
            uid: "e1".into(),
            time: chrono::DateTime::UNIX_EPOCH,
            provider: Provider::Entra,
            action: "<!channel> sign-in".into(),
            success: true,
            src_ip: Some("81.2.69.142".into()),
            user_agent: Some("<https://evil|click> *x*".into()),
            geo: Some(GeoLocation {
                city: Some("\u{202E}nodnoL".into()),
                country: Some("GB".into()),
                lat: 51.5,
                lon: -0.1,
                radius_km: Some(10.0),
            }),
            asn: None,
        };
        let mut f = Finding::new(
            "impossible-travel",
            "<!here> travel",
            Severity::High,
            vec![ev],
        );
        f.identity = Some("<img src=x onerror=alert(1)>@corp".into());
        f.data.insert("distance_km".into(), json!(9000.0));
        f.data.insert("speed_kmh".into(), json!(4500.0));
        f
    }

    #[test]
    fn blocks_stay_within_slack_limits() {
        let mut f = hostile();
        f.title = "T".repeat(5000);
        for i in 0..20 {
            let mut e = f.evidence[0].clone();
            e.uid = format!("e{i}");
            e.action = "A".repeat(5000);
            e.user_agent = Some("U".repeat(5000));
            f.evidence.push(e);
        }
        let v = blocks(&f);
        for b in v["blocks"].as_array().unwrap() {
            if b["type"] == "header" {
                assert!(b["text"]["text"].as_str().unwrap().chars().count() <= MAX_HEADER);
            }
            if let Some(t) = b["text"]["text"].as_str() {
                assert!(t.chars().count() <= 3000, "{}", t.chars().count());
            }
        }
    }

    #[test]
    fn hostile_strings_cannot_form_mentions_links_or_bidi() {
        let text = blocks(&hostile()).to_string();
        for bad in [
            "<!channel>",
            "<!here>",
            "<https://evil",
            "*x*",
            "\u{202E}",
            "<img",
        ] {
            assert!(!text.contains(bad), "{bad} survived in {text}");
        }
        assert!(text.contains("9000 km"), "{text}");
        assert!(text.contains("openstreetmap.org"), "{text}");
    }
}
