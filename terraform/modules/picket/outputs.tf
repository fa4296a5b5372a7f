output "function_names" {
  description = "Function names by handler (poll, ingest, respond)."
  value = {
    poll    = module.poll.function_name
    ingest  = module.ingest.function_name
    respond = module.respond.function_name
  }
}

output "function_arns" {
  description = "Function ARNs by handler."
  value = {
    poll    = module.poll.function_arn
    ingest  = module.ingest.function_arn
    respond = module.respond.function_arn
  }
}

output "role_arns" {
  description = "Execution role ARNs by handler: what modules/azure_app and modules/gcp_identity trust."
  value = {
    poll    = module.poll.role_arn
    ingest  = module.ingest.role_arn
    respond = module.respond.role_arn
  }
}

output "table_name" {
  description = "DynamoDB state table name."
  value       = module.state_table.table_name
}

output "table_arn" {
  description = "DynamoDB state table ARN."
  value       = module.state_table.table_arn
}

output "ingest_queue_url" {
  description = "URL of the ingest queue (CloudTrail events and trail object notifications)."
  value       = aws_sqs_queue.ingest.url
}

output "ingest_queue_arn" {
  description = "ARN of the ingest queue; a trail bucket in another account notifies this queue."
  value       = aws_sqs_queue.ingest.arn
}

output "respond_queue_url" {
  description = "URL of the respond queue."
  value       = aws_sqs_queue.respond.url
}

output "dead_letter_queue_urls" {
  description = "Dead-letter queue URLs by function."
  value = {
    poll    = aws_sqs_queue.poll_dlq.url
    ingest  = aws_sqs_queue.ingest_dlq.url
    respond = aws_sqs_queue.respond_dlq.url
  }
}

output "kms_key_arn" {
  description = "ARN of picket's customer-managed KMS key (state table, queues, secrets, logs, function environment)."
  value       = aws_kms_key.picket.arn
}

output "secret_arns" {
  description = "Secrets Manager secret ARNs by name (slack_webhook_url, slack_bot_token, smtp_password). Put their values with the CLI."
  value       = { for k, s in aws_secretsmanager_secret.this : k => s.arn }
}

output "ses_identity_arn" {
  description = "ARN of the SES sender identity."
  value       = aws_sesv2_email_identity.sender.arn
}

output "ses_dkim_tokens" {
  description = "DKIM CNAME tokens to publish when ses_sender is a domain."
  value       = try(aws_sesv2_email_identity.sender.dkim_signing_attributes[0].tokens, [])
}
