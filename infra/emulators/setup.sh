#!/usr/bin/env bash
# Installs the emulators the integration tests start (pinned): moto server (AWS APIs) and
# aiosmtpd (an SMTP sink), in a venv at ${PICKET_VENV:-$HOME/.cache/picket/venv}.
# Idempotent: a venv that already has the pinned versions is left alone.
# The tests start and stop the servers themselves (tests/util/), one per test binary.
set -euo pipefail

MOTO_VERSION=5.2.5
AIOSMTPD_VERSION=1.4.6
venv=${PICKET_VENV:-$HOME/.cache/picket/venv}
python=${PYTHON:-python3}

want() {
  "$venv/bin/python" - "$MOTO_VERSION" "$AIOSMTPD_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if version("moto") == sys.argv[1] and version("aiosmtpd") == sys.argv[2] else 1)
PY
}

if [ -x "$venv/bin/python" ] && want; then
  echo "emulators ready in $venv (moto $MOTO_VERSION, aiosmtpd $AIOSMTPD_VERSION)"
  exit 0
fi

echo "installing emulators into $venv"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "moto[server]==$MOTO_VERSION" "aiosmtpd==$AIOSMTPD_VERSION"
want
echo "emulators ready in $venv (moto $MOTO_VERSION, aiosmtpd $AIOSMTPD_VERSION)"
