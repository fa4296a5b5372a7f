//! The AWS `SdkConfig`, built once from `[aws]` (region, endpoint override for emulators and
//! VPC endpoints, profile) and shared by every AWS client: IAM actions, SES, sources, state.

use aws_config::{BehaviorVersion, SdkConfig};

use crate::config::AwsSection;

/// Builds the shared SDK configuration. Credentials come from the SDK's provider chain unless
/// `credentials` is given (tests against the emulator).
pub async fn sdk_config(
    section: &AwsSection,
    credentials: Option<aws_sdk_iam::config::Credentials>,
) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = &section.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some(e) = &section.endpoint_url {
        loader = loader.endpoint_url(e.clone());
    }
    if let Some(p) = &section.profile {
        loader = loader.profile_name(p);
    }
    if let Some(c) = credentials {
        loader = loader.credentials_provider(c);
    }
    loader.load().await
}

/// Static credentials (emulators, tests).
pub fn static_credentials(key: &str, secret: &str) -> aws_sdk_iam::config::Credentials {
    aws_sdk_iam::config::Credentials::new(key, secret, None, None, "picket-static")
}
