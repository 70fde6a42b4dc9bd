variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"
}

variable "stack_name" {
  description = "Prefix of every resource name (the SAM stack name's equivalent)."
  type        = string
  default     = "bora"
}

variable "memory_size" {
  description = "Memory of each function, in MB."
  type        = number
  default     = 256
}

variable "home_cloud_url" {
  description = "Keystone URL of the deployment's home cloud (legacy mode)."
  type        = string
  default     = ""
}

variable "finished_ttl_days" {
  description = "Days a finished execution is kept before DynamoDB's TTL deletes it."
  type        = number
  default     = 30
}

variable "max_receive_count" {
  description = "Receives before SQS moves a message to the dead-letter queue."
  type        = number
  default     = 6
}

variable "artifacts_dir" {
  description = "Where the zips are, one folder per function holding bootstrap.zip (`scripts/aws/build-functions.sh --zip` puts them in $BORA_CACHE/target-lambda/functions/arm64)."
  type        = string
  default     = "../target/lambda"
}
