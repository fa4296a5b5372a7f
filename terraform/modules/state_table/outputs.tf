output "table_name" {
  description = "Name of the state table (PICKET_TABLE for the functions)."
  value       = aws_dynamodb_table.this.name
}

output "table_arn" {
  description = "ARN of the state table, for IAM policies."
  value       = aws_dynamodb_table.this.arn
}
