output "api_url" {
  description = "The bora API (Mistral v2 paths under it)."
  value       = aws_apigatewayv2_api.http.api_endpoint
}

output "dead_letter_queue_url" {
  description = "Where poison messages end up."
  value       = aws_sqs_queue.dead_letter.url
}
