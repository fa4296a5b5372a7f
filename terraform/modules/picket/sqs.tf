################################################################################
# Queues: ingest and respond, each with a dead-letter queue; poll's DLQ for
# failed scheduled (asynchronous) invocations. All SSE-KMS, TLS only.
################################################################################

locals {
  queue_kms_reuse_seconds = 300
  queue_arn_prefix        = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${var.name_prefix}"
  # AWS's advice for Lambda event sources: visibility >= 6 x function timeout.
  ingest_visibility  = min(43200, 6 * var.functions.ingest.timeout)
  respond_visibility = min(43200, 6 * var.functions.respond.timeout)
}

resource "aws_sqs_queue" "poll_dlq" {
  name                              = "${var.name_prefix}-poll-dlq"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = aws_kms_key.picket.arn
  kms_data_key_reuse_period_seconds = local.queue_kms_reuse_seconds
  tags                              = local.tags
}

resource "aws_sqs_queue" "ingest_dlq" {
  name                              = "${var.name_prefix}-ingest-dlq"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = aws_kms_key.picket.arn
  kms_data_key_reuse_period_seconds = local.queue_kms_reuse_seconds

  # Only its own source queue may redrive into it (ARN built from the name:
  # the source queue refers to this one, so a reference would be a cycle).
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = ["${local.queue_arn_prefix}-ingest"]
  })

  tags = local.tags
}

resource "aws_sqs_queue" "respond_dlq" {
  name                              = "${var.name_prefix}-respond-dlq"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = aws_kms_key.picket.arn
  kms_data_key_reuse_period_seconds = local.queue_kms_reuse_seconds

  # Only its own source queue may redrive into it (ARN built from the name:
  # the source queue refers to this one, so a reference would be a cycle).
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = ["${local.queue_arn_prefix}-respond"]
  })

  tags = local.tags
}

resource "aws_sqs_queue" "ingest" {
  name                              = "${var.name_prefix}-ingest"
  visibility_timeout_seconds        = local.ingest_visibility
  message_retention_seconds         = 345600
  kms_master_key_id                 = aws_kms_key.picket.arn
  kms_data_key_reuse_period_seconds = local.queue_kms_reuse_seconds

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.ingest_dlq.arn
    maxReceiveCount     = 5
  })

  tags = local.tags
}

resource "aws_sqs_queue" "respond" {
  name                              = "${var.name_prefix}-respond"
  visibility_timeout_seconds        = local.respond_visibility
  message_retention_seconds         = 345600
  kms_master_key_id                 = aws_kms_key.picket.arn
  kms_data_key_reuse_period_seconds = local.queue_kms_reuse_seconds

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.respond_dlq.arn
    maxReceiveCount     = 3
  })

  tags = local.tags
}

# --- queue policies ----------------------------------------------------------

data "aws_iam_policy_document" "deny_insecure_transport" {
  for_each = {
    poll_dlq    = aws_sqs_queue.poll_dlq.arn
    ingest_dlq  = aws_sqs_queue.ingest_dlq.arn
    respond_dlq = aws_sqs_queue.respond_dlq.arn
    ingest      = aws_sqs_queue.ingest.arn
    respond     = aws_sqs_queue.respond.arn
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

data "aws_iam_policy_document" "ingest_queue" {
  source_policy_documents = [data.aws_iam_policy_document.deny_insecure_transport["ingest"].json]

  statement {
    sid       = "CloudTrailEventsFromEventBridge"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.ingest.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.cloudtrail.arn]
    }
  }

  statement {
    sid       = "TrailObjectNotificationsFromS3"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.ingest.arn]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [local.trail_bucket_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.trail_bucket_account_id]
    }
  }
}

# EventBridge targets put undeliverable events into these DLQs.
data "aws_iam_policy_document" "event_dlq" {
  for_each = {
    poll_dlq   = { queue = aws_sqs_queue.poll_dlq.arn, rule = aws_cloudwatch_event_rule.poll.arn }
    ingest_dlq = { queue = aws_sqs_queue.ingest_dlq.arn, rule = aws_cloudwatch_event_rule.cloudtrail.arn }
  }

  source_policy_documents = [data.aws_iam_policy_document.deny_insecure_transport[each.key].json]

  statement {
    sid       = "UndeliverableEventsFromEventBridge"
    actions   = ["sqs:SendMessage"]
    resources = [each.value.queue]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [each.value.rule]
    }
  }
}

resource "aws_sqs_queue_policy" "ingest" {
  queue_url = aws_sqs_queue.ingest.id
  policy    = data.aws_iam_policy_document.ingest_queue.json
}

resource "aws_sqs_queue_policy" "respond" {
  queue_url = aws_sqs_queue.respond.id
  policy    = data.aws_iam_policy_document.deny_insecure_transport["respond"].json
}

resource "aws_sqs_queue_policy" "poll_dlq" {
  queue_url = aws_sqs_queue.poll_dlq.id
  policy    = data.aws_iam_policy_document.event_dlq["poll_dlq"].json
}

resource "aws_sqs_queue_policy" "ingest_dlq" {
  queue_url = aws_sqs_queue.ingest_dlq.id
  policy    = data.aws_iam_policy_document.event_dlq["ingest_dlq"].json
}

resource "aws_sqs_queue_policy" "respond_dlq" {
  queue_url = aws_sqs_queue.respond_dlq.id
  policy    = data.aws_iam_policy_document.deny_insecure_transport["respond_dlq"].json
}
