variable "project_id" {
  description = "Project that holds picket's service account and workload identity pool (and whose logs picket reads when logging_viewer_scope = \"project\")."
  type        = string
}

variable "service_account_id" {
  description = "Account id of the service account (the part before @)."
  type        = string
  default     = "picket"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.service_account_id))
    error_message = "service_account_id must be 6-30 characters of lowercase letters, digits and '-', starting with a letter."
  }
}

variable "pool_id" {
  description = "Id of the workload identity pool."
  type        = string
  default     = "picket-aws"

  validation {
    condition     = can(regex("^[a-z0-9-]{4,32}$", var.pool_id)) && !startswith(var.pool_id, "gcp-")
    error_message = "pool_id must be 4-32 characters of lowercase letters, digits and '-', not starting with gcp-."
  }
}

variable "provider_id" {
  description = "Id of the AWS provider in the pool."
  type        = string
  default     = "aws"
}

variable "aws_account_id" {
  description = "AWS account that runs picket's Lambda functions."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.aws_account_id))
    error_message = "aws_account_id must be a 12-digit account id."
  }
}

variable "aws_role_arns" {
  description = "IAM role ARNs of the picket functions that may act as the service account (poll reads logs; respond acts through the Directory API). Only sessions of exactly these roles are accepted."
  type        = list(string)

  validation {
    condition     = length(var.aws_role_arns) > 0 && alltrue([for a in var.aws_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", a))])
    error_message = "aws_role_arns must be one or more IAM role ARNs (arn:aws:iam::<account>:role/<name>)."
  }
}

variable "logging_viewer_scope" {
  description = "Where the service account gets roles/logging.viewer: \"project\" (project_id) or \"organization\" (organization_id: every project's audit logs)."
  type        = string
  default     = "project"

  validation {
    condition     = contains(["project", "organization"], var.logging_viewer_scope)
    error_message = "logging_viewer_scope must be project or organization."
  }
}

variable "organization_id" {
  description = "Organization id (digits) when logging_viewer_scope = \"organization\"."
  type        = string
  default     = null

  validation {
    condition     = var.organization_id == null || can(regex("^[0-9]+$", var.organization_id))
    error_message = "organization_id is the numeric organization id."
  }
}

variable "read_data_access_logs" {
  description = "Also grant roles/logging.privateLogViewer at the same scope, to read Data Access audit logs (logging.viewer covers Admin Activity and System Event logs only)."
  type        = bool
  default     = false
}

variable "enable_domain_wide_delegation" {
  description = "Let the federated picket roles sign JWTs as the service account (roles/iam.serviceAccountTokenCreator on it), which keyless domain-wide delegation for the Workspace Reports and Directory APIs needs. The delegation itself is granted in the Workspace admin console (README)."
  type        = bool
  default     = true
}

variable "enable_apis" {
  description = "Enable the APIs picket uses in project_id (IAM, IAM Credentials, STS, Cloud Logging, Admin SDK)."
  type        = bool
  default     = true
}
