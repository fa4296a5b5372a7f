################################################################################
# Alarms: function errors, anything in a dead-letter queue, source lag
################################################################################

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each = local.function_names

  alarm_name          = "${each.value}-errors"
  alarm_description   = "picket ${each.key} function failed at least once in 5 minutes (see its log group)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags

  depends_on = [module.poll, module.ingest, module.respond]
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  for_each = {
    poll    = aws_sqs_queue.poll_dlq.name
    ingest  = aws_sqs_queue.ingest_dlq.name
    respond = aws_sqs_queue.respond_dlq.name
  }

  alarm_name          = "${each.value}-not-empty"
  alarm_description   = "Messages in the picket ${each.key} dead-letter queue: events or actions that failed every retry. Inspect, fix, then redrive."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}

# Emitted by the functions (embedded metric format in their logs) for each
# source they read. Missing data means picket stopped reporting, which for a
# detection system is as bad as lag, so it counts as breaching.
resource "aws_cloudwatch_metric_alarm" "source_lag" {
  alarm_name          = "${var.name_prefix}-source-lag"
  alarm_description   = "picket is behind its sources by more than ${var.source_lag_threshold_seconds} s, or stopped reporting SourceLagSeconds."
  namespace           = "Picket"
  metric_name         = "SourceLagSeconds"
  dimensions          = var.source_lag_dimensions
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.source_lag_threshold_seconds
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}
