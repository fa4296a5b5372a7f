//! Tests against real peers: HTTP listeners on loopback (Slack, webhooks, Graph, Google) and
//! the emulators from `infra/emulators/setup.sh` (moto server, aiosmtpd), which the `aws`
//! feature set runs (`infra/test.sh` installs them first).

mod common;
mod notify_http;
mod respond_cli;

#[cfg(feature = "aws")]
mod aws_actions;
#[cfg(feature = "aws")]
mod aws_cloudtrail;
#[cfg(feature = "aws")]
mod aws_s3;
#[cfg(feature = "aws")]
mod email_smtp;
#[cfg(feature = "aws")]
mod flood;
#[cfg(feature = "gcp")]
mod google_actions;
#[cfg(feature = "gcp")]
mod google_auth;
#[cfg(feature = "gcp")]
mod google_sources;
#[cfg(feature = "azure")]
mod graph_actions;
#[cfg(feature = "lambda")]
mod lambda;
#[cfg(feature = "aws")]
mod latency;
#[cfg(feature = "azure")]
mod msgraph_source;
#[cfg(any(feature = "azure", feature = "gcp"))]
mod source_common;
#[cfg(feature = "aws")]
mod state_dynamodb;
