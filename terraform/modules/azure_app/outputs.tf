output "tenant_id" {
  description = "Tenant id ([azure] tenant_id of the packaged picket.toml)."
  value       = data.azuread_client_config.current.tenant_id
}

output "client_id" {
  description = "Application (client) id ([azure] client_id)."
  value       = azuread_application.picket.client_id
}

output "service_principal_object_id" {
  description = "Object id of picket's service principal (add it to protected identities' exclusions, audit it)."
  value       = azuread_service_principal.picket.object_id
}

output "graph_permissions" {
  description = "Microsoft Graph application permissions requested (and granted when grant_admin_consent)."
  value       = local.graph_permissions
}

output "federated_credential_subjects" {
  description = "Subjects trusted by the federated identity credentials."
  value       = { for k, c in azuread_application_federated_identity_credential.aws : k => c.subject }
}
