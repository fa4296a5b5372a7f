variable "name_prefix" {
  description = "Prefix of every resource name (functions, roles, queues, table, secrets, key alias). The respond role is denied any change to roles named <prefix>-*, so pick a prefix no other workload uses."
  type        = string
  default     = "picket"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-32 characters of lowercase letters, digits and '-', starting with a letter."
  }
}

variable "package_path" {
  description = "Path to the Lambda deployment zip built by infra/package-lambda.sh (target/lambda/picket-lambda.zip): one `bootstrap` binary that serves poll, ingest and respond."
  type        = string

  validation {
    condition     = endswith(var.package_path, ".zip")
    error_message = "package_path must point to the .zip built by infra/package-lambda.sh."
  }
}

variable "architecture" {
  description = "Instruction set the package was built for: x86_64 or arm64."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "functions" {
  description = "Per-function sizing. reserved_concurrency also caps parallelism: poll stays at 1 so two pollers never race on one cursor."
  type = object({
    poll    = optional(object({ memory_size = optional(number, 512), timeout = optional(number, 300), reserved_concurrency = optional(number, 1) }), {})
    ingest  = optional(object({ memory_size = optional(number, 512), timeout = optional(number, 120), reserved_concurrency = optional(number, 5) }), {})
    respond = optional(object({ memory_size = optional(number, 256), timeout = optional(number, 120), reserved_concurrency = optional(number, 2) }), {})
  })
  default = {}

  validation {
    condition     = alltrue([for f in [var.functions.poll, var.functions.ingest, var.functions.respond] : f.timeout >= 1 && f.timeout <= 900 && f.reserved_concurrency >= 1])
    error_message = "Each function needs a timeout of 1-900 seconds and a reserved_concurrency of at least 1."
  }
}

variable "environment" {
  description = "Extra environment variables for all three functions (e.g. RUST_LOG, PICKET_CONFIG). They are added to the ones this module sets."
  type        = map(string)
  default     = {}
}

variable "respond_mode" {
  description = "What the respond function does with a playbook match: dry-run (plan and report only) or enforce (act). Start with dry-run."
  type        = string
  default     = "dry-run"

  validation {
    condition     = contains(["dry-run", "enforce"], var.respond_mode)
    error_message = "respond_mode must be dry-run or enforce."
  }
}

variable "poll_schedule_expression" {
  description = "EventBridge schedule of the poll function (CloudTrail LookupEvents, Microsoft Graph, Google Reports, Cloud Logging)."
  type        = string
  default     = "rate(5 minutes)"

  validation {
    condition     = can(regex("^(rate|cron)\\(.+\\)$", var.poll_schedule_expression))
    error_message = "poll_schedule_expression must be rate(...) or cron(...)."
  }
}

variable "include_read_only_cloudtrail_events" {
  description = "Also route read-only CloudTrail management events (Get*, List*, Describe*) to ingest. Much more volume; off by default."
  type        = bool
  default     = false
}

variable "trail_bucket_name" {
  description = "Name of the existing S3 bucket that the (organization) CloudTrail writes to."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.trail_bucket_name))
    error_message = "trail_bucket_name must be a valid S3 bucket name."
  }
}

variable "trail_bucket_account_id" {
  description = "Account that owns the trail bucket (the log-archive account of an organization). Null: this account."
  type        = string
  default     = null

  validation {
    condition     = var.trail_bucket_account_id == null || can(regex("^[0-9]{12}$", var.trail_bucket_account_id))
    error_message = "trail_bucket_account_id must be a 12-digit account id."
  }
}

variable "trail_kms_key_arn" {
  description = "KMS key the trail encrypts its objects with (SSE-KMS), which ingest and poll must be allowed to decrypt with. Null: the trail uses SSE-S3."
  type        = string
  default     = null

  validation {
    condition     = var.trail_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.trail_kms_key_arn))
    error_message = "trail_kms_key_arn must be a KMS key ARN."
  }
}

variable "create_trail_bucket_notification" {
  description = "Manage the trail bucket's S3 event notification (ObjectCreated -> ingest queue). It REPLACES the bucket's whole notification configuration, and only works when the bucket is in this account; otherwise set false and have the bucket owner add the notification (see README)."
  type        = bool
  default     = true
}

variable "trail_object_prefix" {
  description = "Key prefix of the trail's log objects in the bucket."
  type        = string
  default     = "AWSLogs/"
}

variable "protected_principal_arns" {
  description = "Break-glass and other principals picket must never change: IAM user or role ARNs, wildcards allowed (arn:aws:iam::123456789012:user/breakglass-*). picket's own roles, service-linked and Identity Center roles, and principals tagged picket-protected=true are always protected; the root user cannot be changed through these IAM APIs at all."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.protected_principal_arns : can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|\\*):(user|role)/", a))])
    error_message = "protected_principal_arns must be IAM user or role ARNs (wildcards allowed)."
  }
}

variable "ses_sender" {
  description = "Email address (or domain) picket sends alert mail from; created as an SES identity that must then be verified."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep the functions' logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (e.g. 30, 90, 365, 731)."
  }
}

variable "kms_key_admin_arns" {
  description = "IAM principals that may administer (not use) picket's KMS key, in addition to the account root."
  type        = list(string)
  default     = []
}

variable "kms_key_deletion_window_in_days" {
  description = "Waiting period before the KMS key is deleted after destroy."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_key_deletion_window_in_days >= 7 && var.kms_key_deletion_window_in_days <= 30
    error_message = "kms_key_deletion_window_in_days must be between 7 and 30."
  }
}

variable "enable_outbound_identity_federation" {
  description = "Allow poll and respond to call sts:GetWebIdentityToken (IAM outbound identity federation), the keyless way to get a token Microsoft Entra trusts (see modules/azure_app). Needs `aws iam enable-outbound-web-identity-federation` once per account."
  type        = bool
  default     = true
}

variable "alarm_actions" {
  description = "SNS topic ARNs notified when an alarm fires or recovers."
  type        = list(string)
  default     = []
}

variable "source_lag_threshold_seconds" {
  description = "Alarm when the custom metric Picket/SourceLagSeconds (age of the newest event read from a source) exceeds this."
  type        = number
  default     = 1800
}

variable "source_lag_dimensions" {
  description = "Dimensions of the SourceLagSeconds series the alarm watches. Empty: the aggregate series without dimensions, which the functions emit beside the per-source ones."
  type        = map(string)
  default     = {}
}

variable "deletion_protection" {
  description = "Protect the state table from deletion."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
