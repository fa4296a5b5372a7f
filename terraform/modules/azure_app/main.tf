# picket's identity in Microsoft Entra ID: an app registration and its service
# principal with Microsoft Graph application permissions, and federated
# identity credentials so picket's Lambda roles sign in without any secret.

data "azuread_client_config" "current" {}

data "azuread_application_published_app_ids" "well_known" {}

data "azuread_service_principal" "msgraph" {
  client_id = data.azuread_application_published_app_ids.well_known.result["MicrosoftGraph"]
}

locals {
  owners = length(var.owners) > 0 ? var.owners : [data.azuread_client_config.current.object_id]

  # Reading: sign-in logs and directory audits (AuditLog.Read.All), users,
  # apps and grants to resolve and enrich them (Directory.Read.All).
  read_permissions = ["AuditLog.Read.All", "Directory.Read.All"]

  # Responding: revokeSignInSessions, accountEnabled=false on users, and
  # deleting oauth2PermissionGrants (illicit consent).
  response_permissions = var.enable_response_permissions ? concat(
    ["User.RevokeSessions.All", "User.EnableDisableAccount.All", "DelegatedPermissionGrant.ReadWrite.All"],
    var.allow_disable_service_principals ? ["Application.ReadWrite.All"] : [],
  ) : []

  graph_permissions = concat(local.read_permissions, local.response_permissions)
  graph_role_ids    = { for p in local.graph_permissions : p => data.azuread_service_principal.msgraph.app_role_ids[p] }
}

resource "azuread_application" "picket" {
  display_name            = var.display_name
  owners                  = local.owners
  sign_in_audience        = "AzureADMyOrg"
  prevent_duplicate_names = true
  notes                   = "picket: identity threat detection and response. Signs in with workload identity federation from AWS; it has no client secret or certificate."

  required_resource_access {
    resource_app_id = data.azuread_application_published_app_ids.well_known.result["MicrosoftGraph"]

    dynamic "resource_access" {
      for_each = local.graph_role_ids

      content {
        id   = resource_access.value
        type = "Role"
      }
    }
  }
}

resource "azuread_service_principal" "picket" {
  client_id                    = azuread_application.picket.client_id
  owners                       = local.owners
  app_role_assignment_required = true
  notes                        = "picket: identity threat detection and response"
}

# Admin consent for the application permissions.
resource "azuread_app_role_assignment" "graph" {
  for_each = var.grant_admin_consent ? local.graph_role_ids : {}

  app_role_id         = each.value
  principal_object_id = azuread_service_principal.picket.object_id
  resource_object_id  = data.azuread_service_principal.msgraph.object_id
}

# One credential per trusted subject (AWS role). Entra matches issuer, subject
# and audience exactly, so no wildcard can widen the trust.
resource "azuread_application_federated_identity_credential" "aws" {
  #checkov:skip=CKV_AZURE_249:GitHub Actions check; here the issuer is AWS STS and the subject an exact IAM role ARN (validated by the caller, no wildcard possible), so the GitHub claim rules do not apply.
  for_each = var.federation_issuer == null ? {} : var.federated_subjects

  application_id = azuread_application.picket.id
  display_name   = "aws-${each.key}"
  description    = "picket ${each.key} Lambda role"
  audiences      = [var.federation_audience]
  issuer         = var.federation_issuer
  subject        = each.value
}
