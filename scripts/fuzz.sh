#!/usr/bin/env bash
# Run one cargo-fuzz target for a while: scripts/fuzz.sh TARGET [libFuzzer args...]
# Targets: front_end (workflow YAML -> parse_document -> evaluate), expression
# (Template::parse -> evaluate). Seeds in fuzz/seeds/TARGET (committed); what
# libFuzzer finds goes to fuzz/corpus/TARGET (gitignored), crashes to
# fuzz/artifacts/TARGET.
#
# Env: FUZZ_SECONDS (default 60), BORA_CACHE (default ~/.cache/bora; cargo-fuzz
# is installed into $BORA_CACHE/cargo-bin), CARGO_TARGET_DIR (optional).
#
# Stable toolchain: no sanitizer (-s none, ASan needs nightly's -Zsanitizer);
# debug assertions on (-a) so arithmetic overflow panics. cargo-fuzz itself
# passes only stable -C flags then. One job only (single process).
set -euo pipefail

target="${1:?usage: scripts/fuzz.sh TARGET [libFuzzer args...]}"
shift
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${BORA_CACHE:-$HOME/.cache/bora}/cargo-bin"
seconds="${FUZZ_SECONDS:-60}"

if ! [ -x "$cache/bin/cargo-fuzz" ]; then
    echo "installing cargo-fuzz into $cache" >&2
    cargo install --locked --root "$cache" cargo-fuzz
fi
export PATH="$cache/bin:$PATH"

cd "$root"
mkdir -p "fuzz/corpus/$target"
exec cargo fuzz run -s none -a "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -timeout=2 -rss_limit_mb=2048 -max_len=16384 \
    -print_final_stats=1 "$@"
