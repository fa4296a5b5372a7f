output "function_names" {
  description = "picket's Lambda functions."
  value       = module.picket.function_names
}

output "role_arns" {
  description = "Execution roles, trusted by Entra and Google."
  value       = module.picket.role_arns
}

output "secret_arns" {
  description = "Secrets to fill with `aws secretsmanager put-secret-value`."
  value       = module.picket.secret_arns
}

output "dead_letter_queue_urls" {
  description = "Where failed events and actions wait for inspection and redrive."
  value       = module.picket.dead_letter_queue_urls
}

output "azure_client_id" {
  description = "Entra application (client) id ([azure] client_id of the picket.toml packaged with the functions)."
  value       = module.azure_app.client_id
}

output "google_workload_identity_provider" {
  description = "Audience of the Google STS token exchange."
  value       = module.gcp_identity.workload_identity_provider
}

output "google_dwd_client_id" {
  description = "Client ID to authorize for domain-wide delegation in the Workspace admin console."
  value       = module.gcp_identity.service_account_unique_id
}

output "google_dwd_scopes" {
  description = "Scopes to authorize for that client ID."
  value       = join(",", module.gcp_identity.domain_wide_delegation_scopes)
}

output "google_credentials_config" {
  description = "Credential configuration for [google] key_file in the packaged picket.toml: `terraform output -raw google_credentials_config > google-credentials.json`, then infra/package-lambda.sh --google-credentials google-credentials.json."
  value       = module.gcp_identity.google_credentials_config
}
