variable "aws_region" {
  description = "Region to deploy picket in. us-east-1 receives IAM and console sign-in events through EventBridge (see the picket module README, Regions)."
  type        = string
  default     = "us-east-1"
}

variable "package_path" {
  description = "Lambda package built by infra/package-lambda.sh, relative to this folder."
  type        = string
  default     = "../../../target/lambda/picket-lambda.zip"
}

variable "trail_bucket_name" {
  description = "Existing bucket of the organization CloudTrail."
  type        = string
  default     = "example-org-cloudtrail-logs"
}

variable "trail_bucket_account_id" {
  description = "Account owning the trail bucket; null: the account picket runs in."
  type        = string
  default     = null
}

variable "ses_sender" {
  description = "Address picket sends alert mail from."
  type        = string
  default     = "picket@security.example.com"
}

variable "break_glass_user_names" {
  description = "IAM user names (wildcards allowed) picket must never touch."
  type        = list(string)
  default     = ["breakglass-*"]
}

variable "respond_mode" {
  description = "dry-run first; enforce once the findings look right."
  type        = string
  default     = "dry-run"
}

variable "alarm_sns_topic_arns" {
  description = "SNS topics for alarms (the topic's KMS key, if any, must allow cloudwatch.amazonaws.com)."
  type        = list(string)
  default     = []
}

variable "aws_outbound_federation_issuer" {
  description = "This account's IAM outbound identity federation issuer (aws iam get-outbound-web-identity-federation-info --query IssuerIdentifier). Null: no Entra federated credentials yet."
  type        = string
  default     = null
}

variable "azure_tenant_id" {
  description = "Microsoft Entra tenant to register picket in."
  type        = string
  default     = "00000000-0000-0000-0000-000000000000"
}

variable "gcp_project_id" {
  description = "Google Cloud project for picket's service account and workload identity pool."
  type        = string
  default     = "example-security-project"
}

variable "gcp_organization_id" {
  description = "Google Cloud organization whose audit logs picket reads; null: only gcp_project_id."
  type        = string
  default     = null
}
