#!/usr/bin/env bash
# Stop the moto server that scripts/aws/start-moto.sh WORKDIR started.
set -euo pipefail
work="${1:?usage: stop-moto.sh WORKDIR}"
if [ -f "$work/moto.pid" ]; then
    kill "$(cat "$work/moto.pid")" 2>/dev/null || true
    rm -f "$work/moto.pid"
fi
