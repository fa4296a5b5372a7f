variable "display_name" {
  description = "Display name of the app registration and its service principal."
  type        = string
  default     = "picket"
}

variable "owners" {
  description = "Object ids of the app's owners. Empty: the identity running Terraform."
  type        = list(string)
  default     = []
}

variable "enable_response_permissions" {
  description = "Grant the Graph permissions picket's Entra response actions need (revoke sessions, disable users, remove OAuth grants). False: read-only (detection and alerts only)."
  type        = bool
  default     = true
}

variable "allow_disable_service_principals" {
  description = "Also grant Application.ReadWrite.All so picket can disable a malicious service principal. It is the only Graph application permission that can do that for apps picket does not own, and it is powerful (it can add credentials to any app), so it is off unless you opt in; see README."
  type        = bool
  default     = false
}

variable "grant_admin_consent" {
  description = "Grant the application permissions (app role assignments on Microsoft Graph), i.e. admin consent. The identity running Terraform then needs Privileged Role Administrator (or AppRoleAssignment.ReadWrite.All + Application.Read.All). False: consent in the portal afterwards."
  type        = bool
  default     = true
}

variable "federation_issuer" {
  description = "Issuer of the tokens picket's Lambda roles present to Entra. With IAM outbound identity federation: the account's issuer URL from `aws iam get-outbound-web-identity-federation-info` (https://<id>.tokens.sts.global.api.aws). Null: create no federated credential."
  type        = string
  default     = null

  validation {
    condition     = var.federation_issuer == null || can(regex("^https://", var.federation_issuer))
    error_message = "federation_issuer must be an https URL that serves OIDC discovery."
  }
}

variable "federation_audience" {
  description = "Audience (aud) the AWS token is requested for and Entra checks."
  type        = string
  default     = "api://AzureADTokenExchange"
}

variable "federated_subjects" {
  description = "Token subjects Entra trusts, by a short name: with IAM outbound federation the `sub` is the IAM role ARN, e.g. { poll = module.picket.role_arns.poll, respond = module.picket.role_arns.respond }. At most 20 per app."
  type        = map(string)
  default     = {}

  validation {
    condition     = length(var.federated_subjects) <= 20
    error_message = "Entra allows at most 20 federated identity credentials per application."
  }

  validation {
    condition     = alltrue([for s in values(var.federated_subjects) : length(s) > 0 && !strcontains(s, "*")])
    error_message = "Federated subjects are exact values (an IAM role ARN): no empty value, no wildcard."
  }
}
