#!/usr/bin/env bash
# The full test suite: formatting, lints, both feature sets, the Sigma engine's agreement
# with pySigma, supply-chain checks and the Terraform checks. Installs and starts what the
# tests need (pinned), stops it afterwards.
# Usage: infra/test.sh            (from anywhere; CI runs it through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# A fixed target folder outside the clone makes a second run on the same machine fast.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/picket/target}
mkdir -p "$CARGO_TARGET_DIR"

step() { printf '\n=== %s\n' "$*"; }

# Builds the tests, then runs them with a time limit: a test that hangs fails this script
# with a message naming the limit, instead of running until CI's own timeout says nothing.
TEST_LIMIT_MINUTES=${PICKET_TEST_LIMIT_MINUTES:-25}
run_tests() {
  cargo test --locked "$@" --no-run
  local rc=0
  timeout --kill-after=30 "${TEST_LIMIT_MINUTES}m" cargo test --locked "$@" || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "error: cargo test $* did not finish within ${TEST_LIMIT_MINUTES} minutes (a test hangs?)" >&2
  fi
  return "$rc"
}

step "rustfmt"
cargo fmt --all -- --check

step "core build and tests (--no-default-features)"
cargo clippy --locked --no-default-features --all-targets -- -D warnings
run_tests --no-default-features

step "Sigma agreement with pySigma (SQLite backend; pinned)"
bash infra/ci/sigma-agreement.sh

step "emulators (moto server, aiosmtpd; pinned)"
bash infra/emulators/setup.sh

step "all features"
cargo clippy --locked --all-features --all-targets -- -D warnings
run_tests --all-features

step "supply chain"
bash infra/ci/supply-chain.sh

if [ -f infra/ci/terraform-check.sh ]; then
  step "terraform"
  bash infra/ci/terraform-check.sh
fi

step "done"
