#!/usr/bin/env bash
# Stop the Keystone clouds that scripts/keystone/start.sh started in WORK_DIR.
# The work dir is kept, so start.sh WORK_DIR restarts them quickly.
set -euo pipefail
work="${1:?usage: stop.sh WORK_DIR}"
for name in a b; do
    pidfile="$work/$name/gunicorn.pid"
    [[ -f "$pidfile" ]] || continue
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        # gunicorn's master stops its worker and removes the pidfile on TERM.
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$pidfile"
    echo "[keystone] stopped cloud $name (pid $pid)" >&2
done
