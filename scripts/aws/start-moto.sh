#!/usr/bin/env bash
# Start moto (the AWS API emulator: DynamoDB, SQS and KMS in one server) on a
# free loopback port, for the tests on the AWS backend.
#
#   scripts/aws/start-moto.sh WORKDIR   -> prints the path of an env file
#
# The env file sets AWS_ENDPOINT_URL, dummy credentials and the region; source
# it. The Python tools (moto, aws-sam-cli, cfn-lint) live in a venv cached
# under ${BORA_CACHE:-$HOME/.cache/bora}/venv-aws, created on first use.
# Stop with scripts/aws/stop-moto.sh WORKDIR.
set -euo pipefail
work="${1:?usage: start-moto.sh WORKDIR}"
mkdir -p "$work"
cache="${BORA_CACHE:-$HOME/.cache/bora}"
venv="$cache/venv-aws"

if [ ! -x "$venv/bin/moto_server" ] || [ ! -x "$venv/bin/sam" ] || [ ! -x "$venv/bin/cfn-lint" ]; then
    echo "start-moto: creating $venv (moto, aws-sam-cli, cfn-lint; a few minutes the first time)" >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --upgrade pip >&2
    "$venv/bin/pip" install --quiet 'moto[server]' aws-sam-cli cfn-lint >&2
fi

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# Through our wrapper: DynamoDB requests applied one at a time, as DynamoDB
# applies each atomically (see moto_server.py).
"$venv/bin/python" "$(dirname "$0")/moto_server.py" 127.0.0.1 "$port" >"$work/moto.log" 2>&1 &
echo $! >"$work/moto.pid"

for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then
        break
    fi
    sleep 0.2
done
if ! curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then
    echo "start-moto: moto did not start; its log:" >&2
    cat "$work/moto.log" >&2
    exit 1
fi

cat >"$work/aws.env" <<ENV
export AWS_ENDPOINT_URL=http://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export SAM_CLI_TELEMETRY=0
export BORA_AWS_VENV=$venv
ENV
echo "$work/aws.env"
