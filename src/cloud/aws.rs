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

/// The shared configuration with a source's own `region` / `endpoint_url` (a queue in another
/// region, a VPC endpoint), keeping its credentials.
pub fn with_overrides(
    sdk: &SdkConfig,
    region: Option<&str>,
    endpoint_url: Option<&str>,
) -> SdkConfig {
    let mut b = sdk.to_builder();
    if let Some(r) = region {
        b = b.region(aws_config::Region::new(r.to_string()));
    }
    if let Some(e) = endpoint_url {
        b = b.endpoint_url(e);
    }
    b.build()
}

/// An S3 client; path-style addressing whenever an endpoint is overridden (emulators and VPC
/// endpoints do not resolve `<bucket>.<host>` names).
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Static credentials (emulators, tests).
pub fn static_credentials(key: &str, secret: &str) -> aws_sdk_iam::config::Credentials {
    aws_sdk_iam::config::Credentials::new(key, secret, None, None, "picket-static")
}

/// The audience Entra expects in federated assertions.
pub const ENTRA_AUDIENCE: &str = "api://AzureADTokenExchange";

/// A JWT for this process's AWS role from STS `GetWebIdentityToken` (IAM outbound identity
/// federation): the assertion Entra's federated identity credential trusts, so picket signs
/// in to Graph without any secret.
pub struct AwsWebIdentityToken {
    sts: aws_sdk_sts::Client,
    audience: String,
}

impl AwsWebIdentityToken {
    /// Tokens for `audience` from the shared SDK configuration.
    pub fn new(sdk: &SdkConfig, audience: impl Into<String>) -> AwsWebIdentityToken {
        AwsWebIdentityToken {
            sts: aws_sdk_sts::Client::new(sdk),
            audience: audience.into(),
        }
    }
}

#[async_trait::async_trait]
impl super::token::TokenProvider for AwsWebIdentityToken {
    async fn token(&self) -> Result<crate::config::Secret, super::CloudError> {
        let out = self
            .sts
            .get_web_identity_token()
            .audience(&self.audience)
            .signing_algorithm("RS256")
            .duration_seconds(300)
            .send()
            .await
            .map_err(|e| super::CloudError::Token {
                audience: "entra",
                message: format!(
                    "sts GetWebIdentityToken: {}",
                    aws_sdk_sts::error::DisplayErrorContext(&e)
                ),
            })?;
        out.web_identity_token()
            .map(crate::config::Secret::new)
            .ok_or_else(|| super::CloudError::Token {
                audience: "entra",
                message: "sts GetWebIdentityToken answered without a token".into(),
            })
    }
}
