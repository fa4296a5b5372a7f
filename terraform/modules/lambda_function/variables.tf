variable "function_name" {
  description = "Name of the Lambda function; also names its role and its log group (/aws/lambda/<name>)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,64}$", var.function_name))
    error_message = "A Lambda function name is 1-64 characters of a-z, A-Z, 0-9, '-' and '_'."
  }
}

variable "description" {
  description = "What the function does, shown in the console."
  type        = string
  default     = ""
}

variable "handler" {
  description = "Handler name; for the custom runtime it reaches the binary as $_HANDLER (picket-lambda: poll | ingest | respond)."
  type        = string
}

variable "package_path" {
  description = "Path to the deployment zip (a `bootstrap` executable at its root)."
  type        = string
}

variable "runtime" {
  description = "Lambda runtime. picket ships a native binary, so an OS-only runtime."
  type        = string
  default     = "provided.al2023"

  validation {
    condition     = startswith(var.runtime, "provided.")
    error_message = "picket-lambda is a native binary: use an OS-only runtime such as provided.al2023."
  }
}

variable "architecture" {
  description = "Instruction set the binary was built for: x86_64 or arm64."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "memory_size" {
  description = "Memory in MB (CPU scales with it)."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MB."
  }
}

variable "timeout" {
  description = "Timeout in seconds."
  type        = number
  default     = 60

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900 seconds."
  }
}

variable "reserved_concurrent_executions" {
  description = "Concurrency reserved for (and capping) this function. A cap keeps a flood of events from exhausting the account's concurrency or the APIs picket calls."
  type        = number
  default     = 5

  validation {
    condition     = var.reserved_concurrent_executions >= 1
    error_message = "reserved_concurrent_executions must be at least 1 (0 would disable the function)."
  }
}

variable "environment" {
  description = "Environment variables. Never put secret values here: pass Secrets Manager ARNs instead."
  type        = map(string)
  default     = {}
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the environment variables and the log group. Its key policy must allow the CloudWatch Logs service."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep the function's logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

variable "policies" {
  description = "Inline IAM policies for the function's role: name -> policy JSON. The role gets nothing else except X-Ray (when tracing) and VPC access (when in a VPC)."
  type        = map(string)
  default     = {}
}

variable "dead_letter_target_arn" {
  description = "SQS queue ARN that receives asynchronous invocations that failed all retries. The policies must allow sqs:SendMessage to it."
  type        = string
}

variable "maximum_retry_attempts" {
  description = "Retries of a failed asynchronous invocation (0-2)."
  type        = number
  default     = 2

  validation {
    condition     = var.maximum_retry_attempts >= 0 && var.maximum_retry_attempts <= 2
    error_message = "maximum_retry_attempts must be 0, 1 or 2."
  }
}

variable "maximum_event_age_in_seconds" {
  description = "Age after which an asynchronous event is sent to the dead-letter queue instead of being retried."
  type        = number
  default     = 3600

  validation {
    condition     = var.maximum_event_age_in_seconds >= 60 && var.maximum_event_age_in_seconds <= 21600
    error_message = "maximum_event_age_in_seconds must be between 60 and 21600."
  }
}

variable "tracing_mode" {
  description = "X-Ray tracing: Active or PassThrough."
  type        = string
  default     = "Active"

  validation {
    condition     = contains(["Active", "PassThrough"], var.tracing_mode)
    error_message = "tracing_mode must be Active or PassThrough."
  }
}

variable "subnet_ids" {
  description = "Subnets to run the function in. Empty: no VPC. picket calls public APIs (AWS, Microsoft Graph, Google, Slack), so a VPC needs NAT or endpoints."
  type        = list(string)
  default     = []
}

variable "security_group_ids" {
  description = "Security groups when subnet_ids is set."
  type        = list(string)
  default     = []
}

variable "code_signing_config_arn" {
  description = "Lambda code-signing configuration to enforce, if the package is signed (AWS Signer)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
