#!/usr/bin/env bash
# Creates (or reuses) a virtualenv with python-mistralclient 6.3.0 from PyPI
# under $BORA_CACHE and prints the path of its `mistral` executable. The
# mistralclient tests drive `bora serve` with it.
set -euo pipefail
cache="${BORA_CACHE:-$HOME/.cache/bora}"
venv="$cache/venv-mistralclient"
version="6.3.0"
mistral="$venv/bin/mistral"
if [ -x "$mistral" ] && "$venv/bin/pip" show python-mistralclient 2>/dev/null | grep -qx "Version: $version"; then
    echo "$mistral"
    exit 0
fi
mkdir -p "$cache"
python3 -m venv "$venv" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check "python-mistralclient==$version" >&2
echo "$mistral"
