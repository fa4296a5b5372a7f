//! `sqs`: findings handed to an Amazon SQS queue as picket's own finding JSON (not OCSF), one
//! message each. This is how the Lambda poll and ingest functions pass findings to the respond
//! function, which runs the Responder and the configured notifiers; any other consumer can
//! read the same messages. Feature `aws`.

use super::{AlertError, Notifier};
use crate::model::Finding;

/// Sends each finding as one SQS message.
pub struct Sqs {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl Sqs {
    /// A notifier for one queue, over the shared AWS settings.
    pub fn new(sdk: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Sqs {
        Sqs {
            client: aws_sdk_sqs::Client::new(sdk),
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait::async_trait]
impl Notifier for Sqs {
    fn name(&self) -> &'static str {
        "sqs"
    }

    async fn notify(&self, finding: &Finding) -> Result<(), AlertError> {
        let body = serde_json::to_string(finding).map_err(|e| AlertError::Send {
            notifier: "sqs",
            message: format!("finding {} does not serialize: {e}", finding.uid),
        })?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| AlertError::Send {
                notifier: "sqs",
                message: format!(
                    "SendMessage to {}: {}",
                    self.queue_url,
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                ),
            })?;
        Ok(())
    }
}
