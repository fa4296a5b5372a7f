//! `email`: findings as multipart (plain text + HTML) mail, through SMTP (`lettre`, STARTTLS
//! or implicit TLS over rustls, optional auth) or Amazon SES v2 (feature `aws`). Every
//! log-derived string is escaped for HTML in the HTML part and for terminals in the text part.

use super::escape::{html as h, terminal};
use super::facts::Facts;
use super::{AlertError, Notifier};
use crate::config::Secret;
use crate::model::Finding;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// STARTTLS on the submission port (587), required.
    #[default]
    Starttls,
    /// Implicit TLS (465).
    Tls,
    /// Plain text: only for a relay on loopback (tests, local MTA).
    None,
}

/// The subject line of a finding's mail.
pub fn subject(f: &Finding) -> String {
    terminal(&format!(
        "[picket {}] {}",
        f.severity.as_str().to_uppercase(),
        f.title
    ))
}

/// The HTML body of a finding's mail: every field escaped.
pub fn html_body(f: &Finding) -> String {
    let x = Facts::of(f);
    let mut s = String::from("<!doctype html><html><body style=\"font-family:sans-serif\">");
    s.push_str(&format!(
        "<h2>[{}] {}</h2><table>",
        h(&x.severity),
        h(&x.title)
    ));
    for (k, v) in [
        ("Identity", x.identity.as_str()),
        ("Detector", x.detector.as_str()),
        ("Finding", x.uid.as_str()),
    ] {
        s.push_str(&format!(
            "<tr><th align=left>{k}</th><td>{}</td></tr>",
            h(v)
        ));
    }
    if let (Some(d), Some(v)) = (x.distance_km, x.speed_kmh) {
        s.push_str(&format!(
            "<tr><th align=left>Travel</th><td>{d:.0} km at {v:.0} km/h</td></tr>"
        ));
    }
    s.push_str("</table><h3>Evidence</h3><ul>");
    for p in &x.places {
        s.push_str(&format!(
            "<li>{} <code>{}</code> from {} ({}){}{}</li>",
            h(&p.time),
            h(&p.action),
            h(p.ip.as_deref().unwrap_or("-")),
            h(&p.label),
            if p.success { "" } else { " <b>failed</b>" },
            p.user_agent
                .as_deref()
                .map(|u| format!("<br><small>UA: {}</small>", h(u)))
                .unwrap_or_default()
        ));
    }
    s.push_str("</ul>");
    if !x.attacks.is_empty() {
        s.push_str(&format!("<p>ATT&amp;CK: {}</p>", h(&x.attacks.join(", "))));
    }
    s.push_str("<h3>What picket did</h3><ul>");
    if x.response.is_empty() {
        s.push_str("<li>nothing (no playbook matched)</li>");
    }
    for r in &x.response {
        s.push_str(&format!(
            "<li><b>{}</b> <code>{}</code> on {}{}{}</li>",
            h(&r.status),
            h(&r.action),
            h(&r.target),
            r.reason
                .as_deref()
                .map(|x| format!(" — {}", h(x)))
                .unwrap_or_default(),
            r.undo
                .as_deref()
                .map(|u| format!("<br>undo: <code>{}</code>", h(u)))
                .unwrap_or_default()
        ));
    }
    s.push_str("</ul>");
    if !x.description.is_empty() {
        s.push_str(&format!("<p>{}</p>", h(&x.description)));
    }
    s.push_str("</body></html>");
    s
}

/// Where mail goes out.
pub enum Transport {
    /// An SMTP relay.
    Smtp(lettre::AsyncSmtpTransport<lettre::Tokio1Executor>),
    /// Amazon SES v2.
    #[cfg(feature = "aws")]
    Ses(aws_sdk_sesv2::Client),
}

/// Sends findings by mail.
pub struct Email {
    transport: Transport,
    from: String,
    to: Vec<String>,
}

/// Builds an SMTP transport.
pub fn smtp_transport(
    host: &str,
    port: Option<u16>,
    tls: SmtpTls,
    username: Option<&str>,
    password: Option<&Secret>,
) -> Result<lettre::AsyncSmtpTransport<lettre::Tokio1Executor>, AlertError> {
    use lettre::{AsyncSmtpTransport, Tokio1Executor};
    let cfg = |e: lettre::transport::smtp::Error| AlertError::Config {
        notifier: "email",
        message: format!("smtp {host}: {e}"),
    };
    let mut b = match tls {
        SmtpTls::Starttls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(cfg)?
        }
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(cfg)?,
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
    };
    if let Some(p) = port {
        b = b.port(p);
    }
    if let (Some(u), Some(p)) = (username, password) {
        b = b.credentials(lettre::transport::smtp::authentication::Credentials::new(
            u.to_string(),
            p.expose().to_string(),
        ));
    }
    Ok(b.timeout(Some(std::time::Duration::from_secs(20))).build())
}

impl Email {
    /// An email notifier.
    pub fn new(transport: Transport, from: String, to: Vec<String>) -> Result<Email, AlertError> {
        for a in std::iter::once(&from).chain(&to) {
            a.parse::<lettre::message::Mailbox>()
                .map_err(|e| AlertError::Config {
                    notifier: "email",
                    message: format!("`{}` is not an address: {e}", terminal(a)),
                })?;
        }
        if to.is_empty() {
            return Err(AlertError::Config {
                notifier: "email",
                message: "no recipient (`to`)".into(),
            });
        }
        Ok(Email {
            transport,
            from,
            to,
        })
    }
}

fn send_err(message: String) -> AlertError {
    AlertError::Send {
        notifier: "email",
        message,
    }
}

#[async_trait::async_trait]
impl Notifier for Email {
    fn name(&self) -> &'static str {
        "email"
    }

    async fn notify(&self, finding: &Finding) -> Result<(), AlertError> {
        let subject = subject(finding);
        let text = Facts::of(finding).plain_text();
        let html = html_body(finding);
        match &self.transport {
            Transport::Smtp(t) => {
                use lettre::AsyncTransport;
                let mut b = lettre::Message::builder()
                    .from(self.from.parse().map_err(|e| send_err(format!("{e}")))?)
                    .subject(subject);
                for to in &self.to {
                    b = b.to(to.parse().map_err(|e| send_err(format!("{e}")))?);
                }
                let msg = b
                    .multipart(lettre::message::MultiPart::alternative_plain_html(
                        text, html,
                    ))
                    .map_err(|e| send_err(e.to_string()))?;
                t.send(msg).await.map_err(|e| send_err(e.to_string()))?;
            }
            #[cfg(feature = "aws")]
            Transport::Ses(client) => {
                use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
                let content = |s: String| {
                    Content::builder()
                        .data(s)
                        .charset("UTF-8")
                        .build()
                        .map_err(|e| send_err(e.to_string()))
                };
                let message = Message::builder()
                    .subject(content(subject)?)
                    .body(
                        Body::builder()
                            .text(content(text)?)
                            .html(content(html)?)
                            .build(),
                    )
                    .build();
                client
                    .send_email()
                    .from_email_address(&self.from)
                    .destination(
                        Destination::builder()
                            .set_to_addresses(Some(self.to.clone()))
                            .build(),
                    )
                    .content(EmailContent::builder().simple(message).build())
                    .send()
                    .await
                    .map_err(|e| {
                        send_err(format!(
                            "ses: {}",
                            aws_sdk_sesv2::error::DisplayErrorContext(e)
                        ))
                    })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;

    #[test]
    fn html_body_escapes_markup_and_subject_has_no_newlines() {
        let mut f = Finding::new(
            "oauth-consent",
            "consent to <img src=x onerror=alert(1)>\r\nBcc: x@evil",
            Severity::High,
            vec![],
        );
        f.identity = Some("<script>".into());
        let body = html_body(&f);
        assert!(
            !body.contains("<img") && !body.contains("<script>"),
            "{body}"
        );
        assert!(body.contains("&lt;img src=x onerror=alert(1)&gt;"));
        let s = subject(&f);
        assert!(!s.contains('\n') && !s.contains('\r'), "{s}");
    }
}
