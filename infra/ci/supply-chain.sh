#!/usr/bin/env bash
# cargo deny (licences, bans, sources) and cargo audit against the advisory-database snapshot
# in ../shared/advisory-db (this machine cannot fetch the live one). Installs pinned versions
# of both tools when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

DENY_VERSION=0.20.2
AUDIT_VERSION=0.22.2

have() { command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | grep -q "$2"; }
if ! have cargo-deny "$DENY_VERSION"; then
  echo "installing cargo-deny $DENY_VERSION"
  cargo install --locked --quiet cargo-deny --version "$DENY_VERSION"
fi
if ! have cargo-audit "$AUDIT_VERSION"; then
  echo "installing cargo-audit $AUDIT_VERSION"
  cargo install --locked --quiet cargo-audit --version "$AUDIT_VERSION"
fi

# Download every platform's crates so cargo deny can read them offline.
cargo fetch --locked --quiet
cargo deny --offline check licenses bans sources

db=${PICKET_ADVISORY_DB:-../shared/advisory-db}
if [ ! -d "$db" ]; then
  echo "advisory database snapshot not found at $db" >&2
  exit 1
fi
# cargo audit wants a git repository; the snapshot is plain files, so give it one (a copy).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$db" "$work/advisory-db"
chmod -R u+w "$work/advisory-db"
if [ ! -d "$work/advisory-db/.git" ]; then
  git -C "$work/advisory-db" init -q
  git -C "$work/advisory-db" add -A
  git -C "$work/advisory-db" -c user.name=ci -c user.email=ci@localhost commit -qm snapshot
fi
cargo audit --db "$work/advisory-db" --no-fetch --stale --deny warnings
