#!/usr/bin/env bash
# Offline static checks of terraform/:
#   1. every .tf file parses (python-hcl2);
#   2. every IAM policy template (terraform/**/policies/*.json.tftpl) is valid
#      JSON once each ${...} is replaced by a placeholder, has one action per
#      string element, and uses no template directives;
#   3. checkov finds 0 failed checks (skips are justified inline next to the
#      resource with #checkov:skip=CKV_...:reason);
#   4. `terraform fmt -check -recursive` when a terraform binary is on PATH.
# Needs python3 and PyPI (pip) once to fill the venv; nothing else from the
# network. Venv: $PICKET_VENV_DIR, else infra/.venv-terraform.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"

venv="${PICKET_VENV_DIR:-$repo/infra/.venv-terraform}"
req="$repo/infra/ci/requirements-terraform.txt"
# checkov's bc-python-hcl2 and python-hcl2 both install a top-level `hcl2`
# package: python-hcl2 goes into its own --target folder inside the venv.
hcl2_dir="$venv/python-hcl2"
stamp="$venv/.requirements.sha256"

log() { printf 'terraform-check: %s\n' "$*" >&2; }

want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  log "creating venv in $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  checkov_pin="$(grep -E '^checkov==' "$req")"
  hcl2_pin="$(grep -E '^python-hcl2==' "$req")"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$checkov_pin"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --target "$hcl2_dir" "$hcl2_pin"
  echo "$want" > "$stamp"
fi

# 1 + 2: parse HCL and policy templates.
PYTHONPATH="$hcl2_dir" "$venv/bin/python" - terraform <<'PY'
import json, pathlib, re, sys

import hcl2

root = pathlib.Path(sys.argv[1])
failed = []

tf_files = sorted(root.rglob("*.tf"))
for path in tf_files:
    if ".terraform" in path.parts:
        continue
    try:
        with path.open() as f:
            hcl2.load(f)
    except Exception as e:  # the parser raises several lark exception types
        failed.append(f"{path}: HCL parse error: {str(e).splitlines()[0] if str(e) else type(e).__name__}")

templates = sorted(root.rglob("policies/*.json.tftpl"))
for path in templates:
    text = path.read_text()
    if "%{" in text:
        failed.append(f"{path}: template directives (%{{...}}) would make it invalid JSON for the policy test")
    rendered = re.sub(r"\$\{[^}]*\}", "PLACEHOLDER", text)
    try:
        doc = json.loads(rendered)
    except json.JSONDecodeError as e:
        failed.append(f"{path}: not valid JSON after placeholder substitution: {e}")
        continue
    if doc.get("Version") != "2012-10-17":
        failed.append(f"{path}: Version must be 2012-10-17")
    for i, st in enumerate(doc.get("Statement", [])):
        actions = st.get("Action")
        if not isinstance(actions, list) or not all(isinstance(a, str) and re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9*]+", a) for a in actions):
            failed.append(f"{path}: Statement[{i}] ({st.get('Sid')}): Action must be a list with one service:Action string per element")
        if st.get("Effect") not in ("Allow", "Deny"):
            failed.append(f"{path}: Statement[{i}] ({st.get('Sid')}): Effect must be Allow or Deny")

if not templates:
    failed.append(f"{root}: no policies/*.json.tftpl templates found")

for f in failed:
    print(f"FAIL {f}", file=sys.stderr)
print(f"terraform-check: parsed {len(tf_files)} .tf files, {len(templates)} policy templates", file=sys.stderr)
sys.exit(1 if failed else 0)
PY

# 3: checkov, offline.
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
set +e
"$venv/bin/checkov" -d terraform --framework terraform --skip-download --quiet --compact \
  --output cli --output json --output-file-path "console,$report" >&2
checkov_rc=$?
set -e
read -r passed failed skipped < <("$venv/bin/python" - "$report" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
reports = data if isinstance(data, list) else [data]
p = f = s = 0
for r in reports:
    summary = r.get("summary", {})
    p += summary.get("passed", 0)
    f += summary.get("failed", 0)
    s += summary.get("skipped", 0)
print(p, f, s)
PY
)
log "checkov: $passed passed, $failed failed, $skipped skipped (exit $checkov_rc)"

# 4: formatting, when terraform is installed.
fmt_rc=0
if command -v terraform >/dev/null 2>&1; then
  cli_config="$(mktemp)"
  if ! TF_CLI_CONFIG_FILE="$cli_config" terraform fmt -check -recursive -diff terraform >&2; then
    log "terraform fmt -check failed: run terraform fmt -recursive terraform"
    fmt_rc=1
  fi
  rm -f "$cli_config"
else
  log "terraform not on PATH: skipping terraform fmt -check"
fi

if [[ "$checkov_rc" -ne 0 || "$failed" -ne 0 || "$fmt_rc" -ne 0 ]]; then
  echo "terraform checks: $passed passed, $failed failed, $skipped skipped"
  exit 1
fi
echo "terraform checks: $passed passed, 0 failed, $skipped skipped"
