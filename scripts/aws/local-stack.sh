#!/usr/bin/env bash
# Create bora's AWS resources on the local AWS emulator (moto) and print the
# BORA_* variables the Lambda functions read at start (LambdaConfig::from_env
# in shared/src/lambda.rs), as `export` lines to source.
#
#   aws_env=$(scripts/aws/start-moto.sh /tmp/moto); source "$aws_env"
#   scripts/aws/local-stack.sh [NAME] > /tmp/moto/bora.env; source /tmp/moto/bora.env
#
# NAME (default bora-local) prefixes the resources, like the stack name does
# in template.yaml: a table NAME-bora (keys, the by-project-state index, TTL
# on expires_at), queues NAME-run-task and NAME-complete-task (visibility
# 360 s, redrive to NAME-dlq after 6 receives) and a KMS key. Running it
# again with the same NAME reuses what exists (moto keeps state until it
# stops or is reset). Refuses to run unless AWS_ENDPOINT_URL points at
# loopback: it is for the emulator, never a real account.
set -euo pipefail
name="${1:-bora-local}"
: "${AWS_ENDPOINT_URL:?source the env file of scripts/aws/start-moto.sh first}"
: "${BORA_AWS_VENV:?source the env file of scripts/aws/start-moto.sh first}"
case "$AWS_ENDPOINT_URL" in
    http://127.0.0.1:*|http://localhost:*|http://\[::1\]:*) ;;
    *) echo "local-stack: AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL is not loopback; refusing" >&2; exit 1 ;;
esac

# boto3 comes with moto in the emulator's venv.
exec "$BORA_AWS_VENV/bin/python" - "$name" <<'PY'
import json
import os
import sys
import time

import boto3

name = sys.argv[1]
endpoint = os.environ["AWS_ENDPOINT_URL"]
kw = dict(endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"))
ddb = boto3.client("dynamodb", **kw)
sqs = boto3.client("sqs", **kw)
kms = boto3.client("kms", **kw)

# The table as template.yaml declares it (and DynamoDbStore::create_table).
table = f"{name}-bora"
if table not in ddb.list_tables()["TableNames"]:
    key = lambda n, t: {"AttributeName": n, "KeyType": t}
    ddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "gsi1pk", "gsi1sk")],
        KeySchema=[key("pk", "HASH"), key("sk", "RANGE")],
        GlobalSecondaryIndexes=[{
            "IndexName": "by-project-state",
            "KeySchema": [key("gsi1pk", "HASH"), key("gsi1sk", "RANGE")],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }],
    )
    for _ in range(100):
        if ddb.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE":
            break
        time.sleep(0.1)
    ddb.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"AttributeName": "expires_at", "Enabled": True},
    )

# The queues (create_queue is idempotent for the same attributes).
max_receive_count = 6
dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
urls = {}
for queue in ("run-task", "complete-task"):
    urls[queue] = sqs.create_queue(
        QueueName=f"{name}-{queue}",
        Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "360"},
    )["QueueUrl"]

# The KMS key, found again by its alias.
alias = f"alias/{name}-seal"
aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
if alias in aliases and aliases[alias]:
    key_id = aliases[alias]
else:
    key_id = kms.create_key(Description=f"{name}: bora envelope encryption (local)")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
key_arn = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]

print(f"export BORA_TABLE={table}")
print(f"export BORA_RUN_TASK_QUEUE_URL={urls['run-task']}")
print(f"export BORA_COMPLETE_TASK_QUEUE_URL={urls['complete-task']}")
print(f"export BORA_KMS_KEY_ID={key_arn}")
print(f"export BORA_MAX_RECEIVE_COUNT={max_receive_count}")
print("export BORA_ACTION_LEASE_SECONDS=360")
PY
