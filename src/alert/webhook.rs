//! `webhook`: findings as OCSF Detection Finding JSON POSTed to a URL, signed with
//! `X-Picket-Signature: sha256=<hex HMAC-SHA256 of the body>` so the receiver can check they
//! came from picket. Retries go through the shared retry helper.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{AlertError, Notifier};
use crate::cloud::http::send_secret_url;
use crate::cloud::retry::RetryPolicy;
use crate::config::Secret;
use crate::model::{Finding, ocsf};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Picket-Signature";

/// POSTs signed OCSF findings.
pub struct Webhook {
    http: reqwest::Client,
    url: Secret,
    secret: Option<Secret>,
    retry: RetryPolicy,
}

impl Webhook {
    /// A webhook notifier; without `secret` requests are unsigned.
    pub fn new(
        http: reqwest::Client,
        url: Secret,
        secret: Option<Secret>,
        retry: RetryPolicy,
    ) -> Webhook {
        Webhook {
            http,
            url,
            secret,
            retry,
        }
    }
}

/// `sha256=<hex>` of HMAC-SHA256(`key`, `body`).
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // INVARIANT: HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("hmac takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a signature header in constant time (for receivers and tests).
pub fn verify(key: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

#[async_trait::async_trait]
impl Notifier for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn notify(&self, finding: &Finding) -> Result<(), AlertError> {
        let body = ocsf::detection_finding(finding).to_string();
        let sig = self
            .secret
            .as_ref()
            .map(|s| signature(s.expose().as_bytes(), body.as_bytes()));
        send_secret_url(&self.retry, "POST", self.url.expose(), &[], || {
            let mut req = self
                .http
                .post(self.url.expose())
                .header("content-type", "application/json")
                .body(body.clone());
            if let Some(sig) = &sig {
                req = req.header(SIGNATURE_HEADER, sig);
            }
            req
        })
        .await
        .map_err(|e| AlertError::Send {
            notifier: "webhook",
            message: e.to_string(),
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_rfc_4231_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify(
            b"Jefe",
            b"what do ya want for nothing?",
            &signature(b"Jefe", b"what do ya want for nothing?")
        ));
        assert!(!verify(
            b"Jefe",
            b"tampered",
            &signature(b"Jefe", b"what do ya want for nothing?")
        ));
    }
}
