# picket in one AWS account: three Lambda functions from one package, two work
# queues with dead-letter queues, a DynamoDB state table, secrets, a KMS key,
# EventBridge rules, an S3 notification from the trail bucket and alarms.
#
#   EventBridge schedule ──► poll ─────────────┐
#   CloudTrail via EventBridge ─┐              ├──► respond queue ──► respond
#   trail bucket ObjectCreated ─┴► ingest queue ──► ingest ──┘
#
# poll and ingest run pipeline::process on their batches and hand every new
# finding to the respond queue; respond runs the playbooks under the guardrails
# and sends the alerts. It is the only role that may change anything outside
# picket, and never a protected principal.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  trail_bucket_arn        = "arn:${local.partition}:s3:::${var.trail_bucket_name}"
  trail_bucket_account_id = coalesce(var.trail_bucket_account_id, local.account_id)

  function_names = {
    poll    = "${var.name_prefix}-poll"
    ingest  = "${var.name_prefix}-ingest"
    respond = "${var.name_prefix}-respond"
  }
  log_group_arns = {
    for k, name in local.function_names :
    k => "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${name}"
  }

  cloudtrail_rule_name = "${var.name_prefix}-cloudtrail"
  cloudtrail_rule_arn  = "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/${local.cloudtrail_rule_name}"

  secret_names = {
    slack_webhook_url = "${var.name_prefix}/slack-webhook-url"
    slack_bot_token   = "${var.name_prefix}/slack-bot-token"
    smtp_password     = "${var.name_prefix}/smtp-password"
  }
  secrets_arn_pattern = "arn:${local.partition}:secretsmanager:${local.region}:${local.account_id}:secret:${var.name_prefix}/*"
  ses_identity_arn    = "arn:${local.partition}:ses:${local.region}:${local.account_id}:identity/${var.ses_sender}"

  tags = merge({ "app" = "picket" }, var.tags)

  # Values shared by the three policy templates (policies/*.json.tftpl).
  # Every template variable sits inside a JSON string, so the templates stay
  # valid JSON with placeholders and a test can parse them.
  policy_vars = {
    partition           = local.partition
    account_id          = local.account_id
    name_prefix         = var.name_prefix
    table_arn           = module.state_table.table_arn
    ingest_queue_arn    = aws_sqs_queue.ingest.arn
    respond_queue_arn   = aws_sqs_queue.respond.arn
    trail_bucket_arn    = local.trail_bucket_arn
    trail_kms_key_arn   = coalesce(var.trail_kms_key_arn, aws_kms_key.picket.arn)
    kms_key_arn         = aws_kms_key.picket.arn
    secrets_arn_pattern = local.secrets_arn_pattern
    ses_identity_arn    = local.ses_identity_arn
  }

  # What the functions read (src/lambda/mod.rs, LambdaEnv): deployment names
  # only. A <VAR>_SECRET_ARN makes the function fetch that secret once per
  # container and use it wherever the packaged picket.toml says "env:<VAR>".
  environment = merge(
    {
      PICKET_STATE_BACKEND                = "dynamodb"
      PICKET_TABLE                        = module.state_table.table_name
      PICKET_RESPOND_QUEUE_URL            = aws_sqs_queue.respond.url
      PICKET_RESPOND_MODE                 = var.respond_mode
      PICKET_SES_FROM                     = var.ses_sender
      PICKET_SLACK_WEBHOOK_URL_SECRET_ARN = aws_secretsmanager_secret.this["slack_webhook_url"].arn
      PICKET_SLACK_BOT_TOKEN_SECRET_ARN   = aws_secretsmanager_secret.this["slack_bot_token"].arn
      PICKET_SMTP_PASSWORD_SECRET_ARN     = aws_secretsmanager_secret.this["smtp_password"].arn
      PICKET_METRICS_NAMESPACE            = "Picket"
    },
    var.environment,
  )
}

module "state_table" {
  source = "../state_table"

  name                        = "${var.name_prefix}-state"
  kms_key_arn                 = aws_kms_key.picket.arn
  deletion_protection_enabled = var.deletion_protection
  tags                        = local.tags
}

################################################################################
# Functions
################################################################################

module "poll" {
  source = "../lambda_function"

  function_name                  = local.function_names.poll
  description                    = "picket: poll CloudTrail LookupEvents, Microsoft Graph, Google Reports and Cloud Logging on a schedule"
  handler                        = "poll"
  package_path                   = var.package_path
  architecture                   = var.architecture
  memory_size                    = var.functions.poll.memory_size
  timeout                        = var.functions.poll.timeout
  reserved_concurrent_executions = var.functions.poll.reserved_concurrency
  environment                    = local.environment
  kms_key_arn                    = aws_kms_key.picket.arn
  log_retention_days             = var.log_retention_days
  dead_letter_target_arn         = aws_sqs_queue.poll_dlq.arn
  tags                           = local.tags

  policies = merge(
    {
      picket-poll = templatefile("${path.module}/policies/poll.json.tftpl", merge(local.policy_vars, {
        log_group_arn         = local.log_group_arns.poll
        dead_letter_queue_arn = aws_sqs_queue.poll_dlq.arn
      }))
    },
    var.enable_outbound_identity_federation ? { picket-federation = data.aws_iam_policy_document.federation.json } : {},
  )
}

module "ingest" {
  source = "../lambda_function"

  function_name                  = local.function_names.ingest
  description                    = "picket: ingest CloudTrail events from EventBridge and trail objects from S3 notifications"
  handler                        = "ingest"
  package_path                   = var.package_path
  architecture                   = var.architecture
  memory_size                    = var.functions.ingest.memory_size
  timeout                        = var.functions.ingest.timeout
  reserved_concurrent_executions = var.functions.ingest.reserved_concurrency
  environment                    = local.environment
  kms_key_arn                    = aws_kms_key.picket.arn
  log_retention_days             = var.log_retention_days
  dead_letter_target_arn         = aws_sqs_queue.ingest_dlq.arn
  tags                           = local.tags

  policies = {
    picket-ingest = templatefile("${path.module}/policies/ingest.json.tftpl", merge(local.policy_vars, {
      log_group_arn         = local.log_group_arns.ingest
      dead_letter_queue_arn = aws_sqs_queue.ingest_dlq.arn
    }))
  }
}

module "respond" {
  source = "../lambda_function"

  function_name                  = local.function_names.respond
  description                    = "picket: run response playbooks under the guardrails (protected identities, blast radius, dry-run)"
  handler                        = "respond"
  package_path                   = var.package_path
  architecture                   = var.architecture
  memory_size                    = var.functions.respond.memory_size
  timeout                        = var.functions.respond.timeout
  reserved_concurrent_executions = var.functions.respond.reserved_concurrency
  environment                    = local.environment
  kms_key_arn                    = aws_kms_key.picket.arn
  log_retention_days             = var.log_retention_days
  dead_letter_target_arn         = aws_sqs_queue.respond_dlq.arn
  tags                           = local.tags

  policies = merge(
    {
      picket-respond = templatefile("${path.module}/policies/respond.json.tftpl", merge(local.policy_vars, {
        log_group_arn         = local.log_group_arns.respond
        dead_letter_queue_arn = aws_sqs_queue.respond_dlq.arn
      }))
    },
    length(var.protected_principal_arns) > 0 ? { picket-protected-principals = data.aws_iam_policy_document.protected_principals[0].json } : {},
    var.enable_outbound_identity_federation ? { picket-federation = data.aws_iam_policy_document.federation.json } : {},
  )
}

# Break-glass principals come from a variable list, which a JSON template
# cannot expand without template directives, so this one Deny is built here.
# An explicit Deny in any policy of the role wins over every Allow.
data "aws_iam_policy_document" "protected_principals" {
  count = length(var.protected_principal_arns) > 0 ? 1 : 0

  statement {
    sid    = "NeverTouchBreakGlassPrincipals"
    effect = "Deny"
    actions = [
      "iam:UpdateAccessKey",
      "iam:PutRolePolicy",
      "iam:DeleteRolePolicy",
      "iam:DeleteLoginProfile",
      "iam:CreateLoginProfile",
      "iam:AttachUserPolicy",
      "iam:AttachRolePolicy",
      "iam:DetachUserPolicy",
      "iam:DetachRolePolicy",
    ]
    resources = var.protected_principal_arns
  }
}

# Keyless sign-in to Microsoft Entra: the function asks STS for a JWT about its
# own role (IAM outbound identity federation) and trades it for a Graph token
# through the app's federated identity credential (modules/azure_app).
data "aws_iam_policy_document" "federation" {
  statement {
    sid       = "GetWebIdentityTokenForEntra"
    actions   = ["sts:GetWebIdentityToken"]
    resources = ["*"]
  }
}

resource "aws_lambda_event_source_mapping" "ingest" {
  event_source_arn                   = aws_sqs_queue.ingest.arn
  function_name                      = module.ingest.function_arn
  batch_size                         = 10
  maximum_batching_window_in_seconds = 5
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = max(2, var.functions.ingest.reserved_concurrency)
  }
}

resource "aws_lambda_event_source_mapping" "respond" {
  event_source_arn        = aws_sqs_queue.respond.arn
  function_name           = module.respond.function_arn
  batch_size              = 5
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = max(2, var.functions.respond.reserved_concurrency)
  }
}

################################################################################
# Schedule and CloudTrail events
################################################################################

resource "aws_cloudwatch_event_rule" "poll" {
  name                = "${var.name_prefix}-poll"
  description         = "Runs the picket poll function"
  schedule_expression = var.poll_schedule_expression
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "poll" {
  rule = aws_cloudwatch_event_rule.poll.name
  arn  = module.poll.function_arn

  retry_policy {
    maximum_retry_attempts       = 2
    maximum_event_age_in_seconds = 600
  }

  dead_letter_config {
    arn = aws_sqs_queue.poll_dlq.arn
  }
}

resource "aws_lambda_permission" "poll_schedule" {
  statement_id  = "AllowEventBridgeSchedule"
  action        = "lambda:InvokeFunction"
  function_name = module.poll.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.poll.arn
}

# CloudTrail management events reach EventBridge in the region where the call
# was made (IAM and console sign-in: us-east-1). See README "Regions".
resource "aws_cloudwatch_event_rule" "cloudtrail" {
  name        = local.cloudtrail_rule_name
  description = "CloudTrail management events and console sign-ins to the picket ingest queue"
  state       = var.include_read_only_cloudtrail_events ? "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS" : "ENABLED"

  event_pattern = jsonencode({
    "detail-type" = [
      "AWS API Call via CloudTrail",
      "AWS Console Sign In via CloudTrail",
    ]
  })

  tags = local.tags
}

resource "aws_cloudwatch_event_target" "cloudtrail" {
  rule = aws_cloudwatch_event_rule.cloudtrail.name
  arn  = aws_sqs_queue.ingest.arn

  retry_policy {
    maximum_retry_attempts       = 10
    maximum_event_age_in_seconds = 3600
  }

  dead_letter_config {
    arn = aws_sqs_queue.ingest_dlq.arn
  }
}

################################################################################
# Trail bucket -> ingest queue
################################################################################

resource "aws_s3_bucket_notification" "trail" {
  count = var.create_trail_bucket_notification ? 1 : 0

  bucket = var.trail_bucket_name

  queue {
    id            = "${var.name_prefix}-ingest"
    queue_arn     = aws_sqs_queue.ingest.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = var.trail_object_prefix
    filter_suffix = ".json.gz"
  }

  depends_on = [aws_sqs_queue_policy.ingest]
}

################################################################################
# Secrets and email
################################################################################

# Only the containers: values are put with the CLI (README), so they never
# pass through Terraform state.
resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:Slack tokens and the SMTP password are issued by third parties; Secrets Manager cannot rotate them with a Lambda we ship. Rotate by hand (README) and let picket re-read them on each cold start.
  for_each = local.secret_names

  name                    = each.value
  description             = "picket: ${replace(each.key, "_", " ")}"
  kms_key_id              = aws_kms_key.picket.arn
  recovery_window_in_days = 30
  tags                    = local.tags
}

resource "aws_sesv2_email_identity" "sender" {
  email_identity = var.ses_sender
  tags           = local.tags
}
