#!/usr/bin/env bash
# Start two throw-away Keystone 30 clouds on 127.0.0.1 for bora's tests:
#   cloud A over plain HTTP, cloud B over HTTPS with a private CA made here.
# Usage: scripts/keystone/start.sh [WORK_DIR]   (default: a new mktemp dir)
# Writes WORK_DIR/keystone.env (source it before the tests); stop with
# scripts/keystone/stop.sh WORK_DIR.
#
# Idempotent: the virtualenv is cached under ${BORA_CACHE:-$HOME/.cache/bora};
# an existing work dir keeps its databases, keys, users and ports and is only
# restarted; clouds already answering are left alone.
#
# Traps this script avoids on purpose (each costs an hour when met blind):
# - Keystone parses sys.argv with oslo.config, so gunicorn gets NO command-line
#   flags: a flag makes every worker exit while the port still accepts TCP.
#   Everything lives in gunicorn.conf.py in the cloud's directory.
# - gunicorn 27 shares one control socket per user: it is disabled.
# - one worker, one thread, plus a memory cache: several workers see stale
#   revocations, an uncached validation costs ~350 SQLite queries, and
#   threads met "database is locked" (a 500) under the parallel suite.
# - password_hash_rounds = 4 before bootstrap: the default costs ~360 ms a check.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="${1:-$(mktemp -d -t bora-keystone.XXXXXX)}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
cache="${BORA_CACHE:-$HOME/.cache/bora}"
venv="$cache/venv-keystone"
keystone_version="30.0.0"
gunicorn_version="27.0.1"
python="${PYTHON:-python3}"
# Token lifetime in seconds; short values make expiry tests possible.
token_expiration="${KS_TOKEN_EXPIRATION:-3600}"

log() { printf '[keystone] %s\n' "$*" >&2; }

# --- virtualenv (cached, reused while the pinned versions match) -------------
marker="$venv/.bora-installed-keystone-$keystone_version-gunicorn-$gunicorn_version"
if [[ ! -f "$marker" ]]; then
    log "creating virtualenv $venv (keystone $keystone_version, gunicorn $gunicorn_version)"
    rm -rf "$venv"
    mkdir -p "$cache"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "keystone==$keystone_version" "gunicorn==$gunicorn_version"
    touch "$marker"
fi

# --- private CA and server certificate for cloud B ----------------------------
ca_dir="$work/ca"
if [[ ! -f "$ca_dir/server.pem" ]]; then
    log "making a private CA in $ca_dir"
    mkdir -p "$ca_dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 \
        -keyout "$ca_dir/ca-key.pem" -out "$ca_dir/ca.pem" \
        -subj "/CN=bora test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes \
        -keyout "$ca_dir/server-key.pem" -out "$ca_dir/server.csr" \
        -subj "/CN=127.0.0.1" 2>/dev/null
    printf '%s\n' "subjectAltName=IP:127.0.0.1" "basicConstraints=CA:FALSE" \
        "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
        > "$ca_dir/server.ext"
    openssl x509 -req -in "$ca_dir/server.csr" -CA "$ca_dir/ca.pem" \
        -CAkey "$ca_dir/ca-key.pem" -CAcreateserial -days 30 \
        -extfile "$ca_dir/server.ext" -out "$ca_dir/server.pem" 2>/dev/null
    chmod 600 "$ca_dir"/*key.pem
fi

free_port() {
    "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# answers URL [CAFILE]: does GET URL/v3 answer 200?
answers() {
    local args=(--silent --fail --max-time 3 --noproxy '*' --output /dev/null)
    [[ -n "${2:-}" ]] && args+=(--cacert "$2")
    curl "${args[@]}" "$1/v3"
}

# setup_cloud NAME SCHEME USER PROJECT: configure (first time) and start one cloud.
setup_cloud() {
    local name="$1" scheme="$2" user="$3" project="$4"
    local dir="$work/$name"
    mkdir -p "$dir"
    local cafile=""
    [[ "$scheme" == https ]] && cafile="$ca_dir/ca.pem"

    if [[ ! -f "$dir/state.env" ]]; then
        local port
        port="$(free_port)"
        cat > "$dir/state.env" <<STATE
port=$port
admin_password=$(openssl rand -hex 12)
user_password=$(openssl rand -hex 12)
service_password=$(openssl rand -hex 12)
STATE
    fi
    # shellcheck disable=SC1091
    source "$dir/state.env"
    local base="$scheme://127.0.0.1:$port"

    cat > "$dir/keystone.conf" <<CONF
[DEFAULT]
debug = false
[database]
# timeout: SQLite waits for a lock instead of failing at once ("database is
# locked", a 500) when the test suite logs in from many threads.
connection = sqlite:///$dir/keystone.db?timeout=30
[token]
provider = fernet
expiration = $token_expiration
[fernet_tokens]
key_repository = $dir/fernet-keys
[fernet_receipts]
key_repository = $dir/fernet-receipts
[credential]
key_repository = $dir/credential-keys
[identity]
password_hash_rounds = 4
[cache]
enabled = true
backend = dogpile.cache.memory
CONF

    {
        echo "# gunicorn reads this file from its working directory; no CLI flags (see start.sh)."
        echo "wsgi_app = 'keystone.wsgi.api:application'"
        echo "bind = '127.0.0.1:$port'"
        # One request at a time: with threads, SQLite still answered
        # "database is locked" (a 500) under the parallel test suite now and
        # then, despite the busy timeout: a deferred transaction that must
        # upgrade to a write lock fails at once rather than wait.
        echo "workers = 1"
        echo "threads = 1"
        echo "timeout = 120"
        echo "control_socket_disable = True"
        echo "pidfile = '$dir/gunicorn.pid'"
        echo "errorlog = '$dir/gunicorn.log'"
        echo "loglevel = 'info'"
        if [[ "$scheme" == https ]]; then
            echo "certfile = '$ca_dir/server.pem'"
            echo "keyfile = '$ca_dir/server-key.pem'"
        fi
    } > "$dir/gunicorn.conf.py"

    export OS_KEYSTONE_CONFIG_DIR="$dir"
    if [[ ! -f "$dir/bootstrapped" ]]; then
        log "cloud $name: db_sync, keys, bootstrap"
        # keystone-manage is chatty (migrations, eventlet warnings): its
        # output goes to a log that is printed only when a step fails.
        km() {
            "$venv/bin/keystone-manage" --config-file "$dir/keystone.conf" "$@" \
                >> "$dir/keystone-manage.log" 2>&1 \
                || { cat "$dir/keystone-manage.log" >&2; log "keystone-manage $1 failed"; exit 1; }
        }
        km db_sync
        km fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
        km credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
        km bootstrap --bootstrap-password "$admin_password" \
            --bootstrap-region-id RegionOne \
            --bootstrap-admin-url "$base/v3" \
            --bootstrap-internal-url "$base/v3" \
            --bootstrap-public-url "$base/v3"
        touch "$dir/bootstrapped"
    fi

    if answers "$base" "$cafile"; then
        log "cloud $name already answers at $base"
    else
        log "cloud $name: starting gunicorn on $base"
        : > "$dir/gunicorn.log"
        # exec: no shell stays behind holding our stdout, so a caller
        # reading this script's output through a pipe or $(...) gets EOF.
        (cd "$dir" && OS_KEYSTONE_CONFIG_DIR="$dir" exec nohup "$venv/bin/gunicorn") \
            > "$dir/gunicorn.out" 2>&1 < /dev/null &
        local deadline=$((SECONDS + 90))
        until answers "$base" "$cafile"; do
            if grep -q "exited with code" "$dir/gunicorn.log" 2>/dev/null \
                || (( SECONDS >= deadline )); then
                log "cloud $name did not come up; its log:"
                cat "$dir/gunicorn.log" "$dir/gunicorn.out" >&2 || true
                exit 1
            fi
            sleep 0.3
        done
    fi

    if [[ ! -f "$dir/provisioned.env" ]]; then
        log "cloud $name: creating $project, $user and extra catalog entries"
        "$venv/bin/python" "$here/provision.py" \
            --url "$base/v3" --cafile "$cafile" --admin-password "$admin_password" \
            --user "$user" --password "$user_password" --project "$project" \
            --service-user "svc-$name" --service-password "$service_password" \
            --cloud "$name" > "$dir/provisioned.env.tmp"
        mv "$dir/provisioned.env.tmp" "$dir/provisioned.env"
    fi
}

setup_cloud a http alice-a proj-a
setup_cloud b https bob-b proj-b

# --- the env file the tests source --------------------------------------------
emit() { # emit PREFIX NAME CAFILE
    local prefix="$1" dir="$work/$2"
    (
        # shellcheck disable=SC1091
        source "$dir/state.env"
        # shellcheck disable=SC1091
        source "$dir/provisioned.env"
        echo "export ${prefix}_URL=$url"
        echo "export ${prefix}_USER=$user"
        echo "export ${prefix}_USER_ID=$user_id"
        echo "export ${prefix}_PASSWORD=$user_password"
        echo "export ${prefix}_PROJECT=$project"
        echo "export ${prefix}_PROJECT_ID=$project_id"
        echo "export ${prefix}_USER_DOMAIN=Default"
        echo "export ${prefix}_PROJECT_DOMAIN=Default"
        echo "export ${prefix}_SERVICE_USER=$service_user"
        echo "export ${prefix}_SERVICE_USER_ID=$service_user_id"
        echo "export ${prefix}_SERVICE_PASSWORD=$service_password"
        echo "export ${prefix}_SERVICE_PROJECT=$service_project"
        echo "export ${prefix}_ADMIN_PASSWORD=$admin_password"
        echo "export ${prefix}_PID=$(cat "$dir/gunicorn.pid")"
        [[ -n "$3" ]] && echo "export ${prefix}_CA=$3"
        true
    )
}
{
    echo "# Written by scripts/keystone/start.sh; source it before the Keystone tests."
    echo "export KS_WORK=$work"
    echo "export KS_ADMIN_USER=admin"
    emit KS_A a ""
    emit KS_B b "$ca_dir/ca.pem"
} > "$work/keystone.env"
log "ready: source $work/keystone.env"
echo "$work/keystone.env"
