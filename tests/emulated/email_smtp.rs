//! Email through a real SMTP server (aiosmtpd on loopback, from the pinned venv): the message
//! arrives as multipart text + HTML with every hostile string escaped.

use std::time::{Duration, Instant};

use picket::alert::Notifier;
use picket::alert::email::{Email, SmtpTls, Transport, smtp_transport};

use super::common::takeover;
use crate::util::emulators::smtp;

#[tokio::test]
async fn a_finding_arrives_by_smtp_with_html_escaped() {
    let server = smtp();
    let transport =
        smtp_transport("127.0.0.1", Some(server.port), SmtpTls::None, None, None).unwrap();
    let email = Email::new(
        Transport::Smtp(transport),
        "picket@corp.example".into(),
        vec!["soc@corp.example".into()],
    )
    .unwrap();
    let marker = format!("erin-{}@corp.example", std::process::id());
    email.notify(&takeover(&marker, 1)).await.unwrap();

    // aiosmtpd's debugging handler prints each message; wait for ours.
    let start = Instant::now();
    let text = loop {
        let out = server.output.lock().unwrap().clone();
        if let Some(i) = out.find(&marker)
            && out[i..].contains("END MESSAGE")
        {
            break out;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "message never arrived: {out}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(text.contains("soc@corp.example"));
    assert!(text.contains("multipart/alternative"), "{text}");
    assert!(
        text.contains("text/html") && text.contains("text/plain"),
        "{text}"
    );
    // Hostile markup arrives escaped (quoted-printable may wrap lines, so look for the
    // escaped forms and for the absence of live tags).
    let flat = text.replace("=\n", "").replace("=3D", "=");
    let start = flat.find(&marker).unwrap();
    let html_at = flat[start..].find("Content-Type: text/html").unwrap() + start;
    let html = &flat[html_at..];
    let html = &html[..html.find("\n--").unwrap_or(html.len())];
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{html}"
    );
    assert!(!html.contains("<img"), "{html}");
    assert!(html.contains("&lt;!channel&gt;"), "{html}");
    assert!(!html.contains('\u{202E}'), "{html}");
}
