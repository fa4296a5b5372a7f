output "service_account_email" {
  description = "Email of picket's service account ([google] service_account in picket.toml)."
  value       = google_service_account.picket.email
}

output "service_account_unique_id" {
  description = "Numeric unique id of the service account: the Client ID to enter for domain-wide delegation in the Workspace admin console."
  value       = google_service_account.picket.unique_id
}

output "workload_identity_provider" {
  description = "Full resource name of the AWS provider (the audience of the STS token exchange): //iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>."
  value       = "//iam.googleapis.com/${google_iam_workload_identity_pool_provider.aws.name}"
}

output "trusted_aws_roles" {
  description = "Assumed-role ARNs the pool accepts."
  value       = local.assumed_role_arns
}

output "domain_wide_delegation_scopes" {
  description = "OAuth scopes to grant to service_account_unique_id in the Workspace admin console."
  value = [
    "https://www.googleapis.com/auth/admin.reports.audit.readonly",
    "https://www.googleapis.com/auth/admin.directory.user.security",
    "https://www.googleapis.com/auth/admin.directory.user",
  ]
}

output "google_credentials_config" {
  description = "Workload identity federation credential configuration (an external_account file, no secret) for picket's AWS roles: package it with the Lambda functions (infra/package-lambda.sh --google-credentials) and name it in [google] key_file. The AWS credentials and region come from the function's environment."
  value = jsonencode({
    type                              = "external_account"
    audience                          = "//iam.googleapis.com/${google_iam_workload_identity_pool_provider.aws.name}"
    subject_token_type                = "urn:ietf:params:aws:token-type:aws4_request"
    token_url                         = "https://sts.googleapis.com/v1/token"
    service_account_impersonation_url = "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${google_service_account.picket.email}:generateAccessToken"
    credential_source = {
      environment_id                 = "aws1"
      regional_cred_verification_url = "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
    }
  })
}
