#!/usr/bin/env bash
# Build the three Lambda functions with cargo-lambda in the `lambda` profile
# (see the root Cargo.toml) for Lambda's arm64 (default) or x86_64, and print
# each bootstrap's path and size.
#
#   scripts/aws/build-functions.sh [--arch arm64|x86_64] [--zip] [-- EXTRA CARGO LAMBDA ARGS]
#
# The tools (cargo-lambda and zig, which cargo-lambda uses as the cross
# linker) live in a venv cached under ${BORA_CACHE:-$HOME/.cache/bora}/venv-lambda,
# created on first use (`pip install cargo-lambda ziglang`). The build has
# its own target dir, $BORA_CACHE/target-lambda, so it does not wait on the
# lock of the debug build in $BORA_CACHE/target. The bootstraps land in
# $BORA_CACHE/target-lambda/functions/<arch>/<function>/bootstrap (one
# folder per architecture, so an x86_64 build does not overwrite the arm64
# one; not cargo-lambda's default target/lambda/, which is also where cargo
# puts the `lambda` profile's own host build);
# with --zip, bootstrap.zip instead (what infra/ deploys: pass that folder as
# -var artifacts_dir=...). Runs at nice 19: the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/../.."

arch=arm64
zip=false
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) arch="${2:?--arch needs arm64 or x86_64}"; shift 2 ;;
        --arch=*) arch="${1#--arch=}"; shift ;;
        --zip) zip=true; shift ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-functions: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
case "$arch" in
    arm64|aarch64) arch=arm64; arch_flag=--arm64; triple=aarch64-unknown-linux-gnu ;;
    x86_64|x86-64|amd64) arch=x86_64; arch_flag=--x86-64; triple=x86_64-unknown-linux-gnu ;;
    *) echo "build-functions: --arch must be arm64 or x86_64, not '$arch'" >&2; exit 2 ;;
esac

cache="${BORA_CACHE:-$HOME/.cache/bora}"
venv="$cache/venv-lambda"
if [ ! -x "$venv/bin/cargo-lambda" ] || ! "$venv/bin/python3" -c 'import ziglang' 2>/dev/null; then
    echo "build-functions: creating $venv (cargo-lambda, ziglang; under a minute the first time)" >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --upgrade pip >&2
    "$venv/bin/pip" install --quiet cargo-lambda ziglang >&2
fi
# cargo-lambda finds zig as `python3 -m ziglang` through the venv's python.
export PATH="$venv/bin:$PATH"
export CARGO_TARGET_DIR="$cache/target-lambda"
lambda_dir="$CARGO_TARGET_DIR/functions/$arch"
format=(--output-format binary)
if $zip; then format=(--output-format zip); fi

functions=(create-execution run-task complete-task)
packages=()
for f in "${functions[@]}"; do packages+=(-p "$f"); done

echo "build-functions: cargo lambda build --profile lambda $arch_flag ${format[*]} ${packages[*]} (target dir $CARGO_TARGET_DIR)" >&2
start=$(date +%s)
nice -n 19 cargo lambda build --profile lambda "$arch_flag" "${format[@]}" \
    --lambda-dir "$lambda_dir" "${packages[@]}" ${extra[@]+"${extra[@]}"}
end=$(date +%s)
echo "build-functions: built for $triple in $((end - start)) s wall" >&2

# The profile strips (strip = true); the size printed is the deployed binary.
for f in "${functions[@]}"; do
    if $zip; then
        artifact="$lambda_dir/$f/bootstrap.zip"
        [ -f "$artifact" ] || { echo "build-functions: $artifact is missing" >&2; exit 1; }
        size=$(python3 -c 'import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).getinfo("bootstrap").file_size)' "$artifact")
        note=" in a $(stat -c %s "$artifact") B zip"
    else
        artifact="$lambda_dir/$f/bootstrap"
        [ -f "$artifact" ] || { echo "build-functions: $artifact is missing" >&2; exit 1; }
        size=$(stat -c %s "$artifact")
        note=""
        if command -v file >/dev/null; then note=" ($(file -b "$artifact" | cut -d, -f1-2))"; fi
    fi
    printf '%s\t%s B (%s MB)%s\t%s\n' "$f" "$size" "$(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1e6 }')" "$note" "$artifact"
done
