################################################################################
# Customer-managed KMS key: state table, queues, secrets, logs, Lambda env
################################################################################

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:A KMS key policy's Resource is always "*" (the key itself); the root statement delegates access to IAM policies, as AWS's default key policy does, so the key can never become unmanageable.
  #checkov:skip=CKV_AWS_111:Same reason: "*" in a key policy means this key only, and write access is delegated to IAM and to the service statements below, which carry source conditions.
  #checkov:skip=CKV_AWS_356:Same reason: key policies cannot name a narrower resource than "*" (this key).
  statement {
    sid       = "AccountRootManagesKeyAndEnablesIamPolicies"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  dynamic "statement" {
    for_each = length(var.kms_key_admin_arns) > 0 ? [1] : []

    content {
      sid = "KeyAdministrators"
      actions = [
        "kms:Create*",
        "kms:Describe*",
        "kms:Enable*",
        "kms:List*",
        "kms:Put*",
        "kms:Update*",
        "kms:Revoke*",
        "kms:Disable*",
        "kms:Get*",
        "kms:Delete*",
        "kms:TagResource",
        "kms:UntagResource",
        "kms:ScheduleKeyDeletion",
        "kms:CancelKeyDeletion",
      ]
      resources = ["*"]

      principals {
        type        = "AWS"
        identifiers = var.kms_key_admin_arns
      }
    }
  }

  statement {
    sid = "CloudWatchLogsEncryptPicketLogGroups"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${var.name_prefix}-*"]
    }
  }

  # EventBridge and S3 write into the SSE-KMS ingest queue (and EventBridge
  # into the dead-letter queues); they need a data key to do so.
  statement {
    sid       = "EventBridgeSendsToEncryptedQueues"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values = [
        local.cloudtrail_rule_arn,
        "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/${var.name_prefix}-poll",
      ]
    }
  }

  statement {
    sid       = "S3NotifiesEncryptedIngestQueue"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = ["*"]

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

resource "aws_kms_key" "picket" {
  description             = "picket: state table, queues, secrets, logs and function environment"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = var.kms_key_deletion_window_in_days
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = local.tags
}

resource "aws_kms_alias" "picket" {
  name          = "alias/${var.name_prefix}"
  target_key_id = aws_kms_key.picket.key_id
}
