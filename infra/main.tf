# bora on AWS: the same resources as template.yaml, with the same names.
# Build first:  cargo lambda build --profile lambda --arm64 --output-format zip
# (see the README), then: terraform init && terraform apply.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

provider "aws" {
  region = var.region
}

locals {
  functions = {
    "create-execution" = {}
    "run-task"         = {}
    "complete-task"    = {}
  }
  environment = {
    BORA_TABLE                   = aws_dynamodb_table.table.name
    BORA_RUN_TASK_QUEUE_URL      = aws_sqs_queue.run_task.url
    BORA_COMPLETE_TASK_QUEUE_URL = aws_sqs_queue.complete_task.url
    BORA_KMS_KEY_ID              = aws_kms_key.seal.arn
    BORA_HOME_CLOUD_URL          = var.home_cloud_url
    BORA_FINISHED_TTL_DAYS       = tostring(var.finished_ttl_days)
    BORA_MAX_RECEIVE_COUNT       = tostring(var.max_receive_count)
    BORA_ACTION_LEASE_SECONDS    = "360"
    RUST_LOG                     = "info"
  }
}

resource "aws_dynamodb_table" "table" {
  name         = "${var.stack_name}-bora"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "gsi1pk"
    type = "S"
  }
  attribute {
    name = "gsi1sk"
    type = "S"
  }

  global_secondary_index {
    name            = "by-project-state"
    hash_key        = "gsi1pk"
    range_key       = "gsi1sk"
    projection_type = "KEYS_ONLY"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }
}

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.stack_name}-dlq"
  message_retention_seconds = 1209600
}

resource "aws_sqs_queue" "run_task" {
  name                       = "${var.stack_name}-run-task"
  visibility_timeout_seconds = 360
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.max_receive_count
  })
}

resource "aws_sqs_queue" "complete_task" {
  name                       = "${var.stack_name}-complete-task"
  visibility_timeout_seconds = 360
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.max_receive_count
  })
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

resource "aws_kms_key" "seal" {
  description         = "bora envelope encryption of execution secrets (one data key per execution)"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers"
      Effect    = "Allow"
      Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

# One role per function, least privilege.
data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each           = local.functions
  name               = "${var.stack_name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

resource "aws_iam_role_policy_attachment" "logs" {
  for_each   = local.functions
  role       = aws_iam_role.function[each.key].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

locals {
  table_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"]
  consume       = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility", "sqs:SendMessage"]
  policies = {
    "create-execution" = [
      # The API also deletes (executions, registered entries).
      { actions = concat(local.table_actions, ["dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]), resources = [aws_dynamodb_table.table.arn, "${aws_dynamodb_table.table.arn}/index/*"] },
      # State changes, reruns and async results from the API.
      { actions = ["sqs:SendMessage"], resources = [aws_sqs_queue.complete_task.arn, aws_sqs_queue.run_task.arn] },
      { actions = ["kms:GenerateDataKey"], resources = [aws_kms_key.seal.arn] },
    ]
    "run-task" = [
      { actions = local.table_actions, resources = [aws_dynamodb_table.table.arn] },
      { actions = local.consume, resources = [aws_sqs_queue.run_task.arn] },
      { actions = ["sqs:SendMessage"], resources = [aws_sqs_queue.complete_task.arn] },
      { actions = ["kms:Decrypt"], resources = [aws_kms_key.seal.arn] },
    ]
    "complete-task" = [
      { actions = local.table_actions, resources = [aws_dynamodb_table.table.arn] },
      { actions = local.consume, resources = [aws_sqs_queue.complete_task.arn] },
      { actions = ["sqs:SendMessage"], resources = [aws_sqs_queue.run_task.arn] },
      # No KMS: a sub-workflow copies its parent's sealed target as it is.
    ]
  }
}

data "aws_iam_policy_document" "function" {
  for_each = local.policies
  dynamic "statement" {
    for_each = each.value
    content {
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions
  name     = "${var.stack_name}-${each.key}"
  role     = aws_iam_role.function[each.key].id
  policy   = data.aws_iam_policy_document.function[each.key].json
}

resource "aws_lambda_function" "function" {
  for_each         = local.functions
  function_name    = "${var.stack_name}-${each.key}"
  role             = aws_iam_role.function[each.key].arn
  runtime          = "provided.al2023"
  architectures    = ["arm64"]
  handler          = "bootstrap"
  memory_size      = var.memory_size
  timeout          = 60
  filename         = "${var.artifacts_dir}/${each.key}/bootstrap.zip"
  source_code_hash = filebase64sha256("${var.artifacts_dir}/${each.key}/bootstrap.zip")
  environment {
    variables = local.environment
  }
}

resource "aws_lambda_event_source_mapping" "run_task" {
  event_source_arn        = aws_sqs_queue.run_task.arn
  function_name           = aws_lambda_function.function["run-task"].arn
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]
}

resource "aws_lambda_event_source_mapping" "complete_task" {
  event_source_arn        = aws_sqs_queue.complete_task.arn
  function_name           = aws_lambda_function.function["complete-task"].arn
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]
}

resource "aws_apigatewayv2_api" "http" {
  name          = "${var.stack_name}-api"
  protocol_type = "HTTP"
}

resource "aws_apigatewayv2_integration" "create_execution" {
  api_id                 = aws_apigatewayv2_api.http.id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.function["create-execution"].invoke_arn
  payload_format_version = "2.0"
}

resource "aws_apigatewayv2_route" "create_execution" {
  api_id    = aws_apigatewayv2_api.http.id
  # The default route: every path of the REST API v2 reaches the router.
  route_key = "$default"
  target    = "integrations/${aws_apigatewayv2_integration.create_execution.id}"
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.http.id
  name        = "$default"
  auto_deploy = true
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["create-execution"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/*/*"
}
