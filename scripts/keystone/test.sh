#!/usr/bin/env bash
# Start (or reuse) the two test Keystones, run the Keystone client tests
# against them, and stop them again unless KEEP_KEYSTONE=1.
# Usage: scripts/keystone/test.sh [WORK_DIR] [extra cargo test args...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="${1:-${TMPDIR:-/tmp}/bora-keystone}"
shift || true
env_file="$("$here/start.sh" "$work")"
# shellcheck disable=SC1090
source "$env_file"
status=0
cargo test -p bora-tests --test keystone_client "$@" || status=$?
[[ "${KEEP_KEYSTONE:-0}" == 1 ]] || "$here/stop.sh" "$work"
exit "$status"
