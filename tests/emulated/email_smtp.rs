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

#[tokio::test]
async fn ses_v2_sends_through_the_shared_sdk_config() {
    let moto = crate::util::emulators::moto().await;
    let sdk = crate::util::emulators::aws_config(&moto.endpoint).await;
    let ses = aws_sdk_sesv2::Client::new(&sdk);
    ses.create_email_identity()
        .email_identity("picket@corp.example")
        .send()
        .await
        .unwrap();
    let email = Email::new(
        Transport::Ses(ses),
        "picket@corp.example".into(),
        vec!["soc@corp.example".into()],
    )
    .unwrap();
    email
        .notify(&takeover("frank@corp.example", 1))
        .await
        .unwrap();
    let sent = reqwest::get(format!("{}/moto-api/data.json", moto.endpoint))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // moto keeps sent messages in its model data.
    let v: serde_json::Value = serde_json::from_str(&sent).unwrap();
    let messages = v["ses"]["Message"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m["source"], "picket@corp.example");
    assert_eq!(m["destinations"]["ToAddresses"][0], "soc@corp.example");
    let body = m["body"].as_str().unwrap();
    assert!(body.contains("frank@corp.example"), "{body}");
    assert!(
        body.contains("&lt;img src=x onerror=alert(1)&gt;") && !body.contains("<img"),
        "{body}"
    );
    assert!(!m["subject"].as_str().unwrap().contains('\n'));
}
