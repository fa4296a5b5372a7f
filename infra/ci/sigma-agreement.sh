#!/usr/bin/env bash
# picket's Sigma engine against pySigma and its SQLite backend, on what the repository holds
# (the staged corpus is not needed): the edge-case probes, and the rule pack and SigmaHQ's
# cloud rules on the pack's cases plus records synthesized from every rule. Fails on any
# disagreement not explained in tools/sigma-agreement/known_differences.yml.
# pySigma comes pinned (tools/sigma-agreement/requirements.txt) into a venv of its own at
# ${PICKET_SIGMA_VENV:-$HOME/.cache/picket/sigma-venv}, reinstalled when the pins change.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=${PICKET_SIGMA_VENV:-$HOME/.cache/picket/sigma-venv}
req=tools/sigma-agreement/requirements.txt
if ! [ -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/requirements.txt"; then
  echo "installing pySigma into $venv"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$venv/requirements.txt"
fi
py="$venv/bin/python"
tool=tools/sigma-agreement/sigma_agreement.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "-- edge-case probes"
"$py" "$tool" --rules tools/sigma-agreement/probes \
  --records tools/sigma-agreement/probes/records.json --mappings detections/mappings
echo "-- rule pack: its cases and synthesized records"
"$py" "$tool" --rules detections --records detections --synthesize "$tmp/pack.cases.json"
echo "-- SigmaHQ cloud rules: the pack's cases and synthesized records"
"$py" "$tool" --rules tests/fixtures/sigma-cloud --records detections \
  --synthesize "$tmp/sigmahq.cases.json"
