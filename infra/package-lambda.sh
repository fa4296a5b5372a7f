#!/usr/bin/env bash
# Builds the Lambda deployment zip for runtime provided.al2023: one `bootstrap` (the
# picket-lambda release binary, serving the poll, ingest and respond handlers) and the
# configuration it reads at start-up, plus optional extra rules and Geo-IP databases.
#
# Usage: infra/package-lambda.sh [--config FILE] [--rules DIR] [--geoip DIR]
#                                [--google-credentials FILE]
#                                [--target TRIPLE | --cargo-lambda x86_64|arm64] [--out ZIP]
#   --config FILE   picket.toml to package (default infra/lambda/picket.toml)
#   --rules DIR     extra Sigma rules, packaged as rules/ ([detect.rules] paths = ["rules"])
#   --geoip DIR     GeoLite2-City.mmdb / GeoLite2-ASN.mmdb, packaged as geoip/
#   --google-credentials FILE  Google workload identity federation config (terraform output
#                   google_credentials_config; no secret), packaged as google-credentials.json
#                   ([google] key_file = "google-credentials.json")
#   --target TRIPLE cargo --target (e.g. aarch64-unknown-linux-gnu; needs that rustup target
#                   and a linker for it)
#   --cargo-lambda ARCH  build with `cargo lambda build` (zig; targets AL2023's glibc) for
#                   x86_64 or arm64 instead of plain cargo
#   --out ZIP       output (default target/lambda/picket-lambda.zip, what Terraform expects)
# The zip's layout: bootstrap, picket.toml, [rules/], [geoip/], [google-credentials.json].
# The function's handler setting (poll | ingest | respond) reaches the binary as $_HANDLER.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

config="$repo/infra/lambda/picket.toml"
rules="" geoip="" google="" target="" cargo_lambda="" out="$repo/target/lambda/picket-lambda.zip"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --rules) rules="$2"; shift 2 ;;
    --geoip) geoip="$2"; shift 2 ;;
    --google-credentials) google="$2"; shift 2 ;;
    --target) target="$2"; shift 2 ;;
    --cargo-lambda) cargo_lambda="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "package-lambda: unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { printf 'package-lambda: %s\n' "$*" >&2; }
command -v zip >/dev/null || { log "zip is not installed"; exit 1; }
[[ -f "$config" ]] || { log "$config: no such config"; exit 1; }
[[ -z "$google" || -f "$google" ]] || { log "$google: no such file"; exit 1; }

target_dir="${CARGO_TARGET_DIR:-$repo/target}"
if [[ -n "$cargo_lambda" ]]; then
  case "$cargo_lambda" in
    arm64) arch_flag=--arm64 ;;
    x86_64) arch_flag=--x86-64 ;;
    *) log "--cargo-lambda takes x86_64 or arm64"; exit 2 ;;
  esac
  cargo lambda build --release --locked --features lambda --bin picket-lambda "$arch_flag"
  bin="$target_dir/lambda/picket-lambda/bootstrap"
else
  cargo build --release --locked --features lambda --bin picket-lambda ${target:+--target "$target"}
  bin="$target_dir/${target:+$target/}release/picket-lambda"
fi
[[ -x "$bin" ]] || { log "no binary at $bin"; exit 1; }

# provided.al2023 has glibc 2.34: a binary that needs newer symbols fails at start-up there.
if command -v objdump >/dev/null; then
  need="$(objdump -T "$bin" | grep -oE 'GLIBC_[0-9]+\.[0-9]+' | sort -t. -k2 -n -u | tail -1 || true)"
  log "binary needs ${need:-no versioned glibc symbols} (provided.al2023 has GLIBC_2.34)"
  if [[ -n "$need" ]] && [[ "$(printf '%s\n' "${need#GLIBC_}" 2.34 | sort -V | tail -1)" != 2.34 ]]; then
    log "too new for provided.al2023: build with --cargo-lambda, or on Amazon Linux 2023"
    exit 1
  fi
fi

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp "$bin" "$stage/bootstrap"
strip "$stage/bootstrap" 2>/dev/null || true
chmod 755 "$stage/bootstrap"
cp "$config" "$stage/picket.toml"
[[ -z "$rules" ]] || cp -r "$rules" "$stage/rules"
[[ -z "$google" ]] || cp "$google" "$stage/google-credentials.json"
if [[ -n "$geoip" ]]; then
  mkdir "$stage/geoip"
  cp "$geoip"/*.mmdb "$stage/geoip/"
fi
mkdir -p "$(dirname "$out")"
rm -f "$out"
(cd "$stage" && zip -q -r -X "$out" .)
log "wrote $out ($(du -h "$out" | cut -f1); bootstrap $(du -h "$stage/bootstrap" | cut -f1))"
