#!/usr/bin/env bash
# Offline static checks of terraform/:
#   1. every .tf file parses (python-hcl2);
#   2. every IAM policy template (terraform/**/policies/*.json.tftpl) is valid
#      JSON once each ${...} is replaced by a placeholder, has one action per
#      string element, and uses no template directives;
#   3. checkov finds 0 failed checks (skips are justified inline next to the
#      resource with #checkov:skip=CKV_...:reason);
#   4. `terraform fmt -check -recursive` when a terraform binary is on PATH;
#   5. `terraform validate` of each module whose providers are all found in a
#      local provider mirror ($PICKET_TF_PROVIDER_MIRROR, default
#      /opt/tf-plugins; init cannot download providers offline). Modules
#      whose providers are missing are listed as skipped.
# Needs python3 and PyPI (pip) once to fill the venv; nothing else from the
# network. Venv: $PICKET_VENV_DIR, else infra/.venv-terraform.
# The last line on stdout is "terraform: N passed, M failed, K skipped" with
# checkov's counts (M also counts a failure of any other step as >= 1).
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
  checkov_pin="$(grep -E '^checkov==' "$req")"
  hcl2_pin="$(grep -E '^python-hcl2==' "$req")"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$checkov_pin"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --target "$hcl2_dir" "$hcl2_pin"
  echo "$want" > "$stamp"
fi

# 1 + 2: parse HCL and policy templates.
set +e
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
parse_rc=$?
set -e

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

# 5: validate against a local provider mirror, when there is one.
validate_rc=0
mirror="${PICKET_TF_PROVIDER_MIRROR:-/opt/tf-plugins}"
if command -v terraform >/dev/null 2>&1 && [[ -d "$mirror" ]]; then
  work="$(mktemp -d)"
  cp -r terraform "$work/terraform"
  printf 'provider_installation {\n  filesystem_mirror {\n    path = "%s"\n  }\n}\n' "$mirror" > "$work/cli.tfrc"
  for dir in "$work"/terraform/modules/* "$work"/terraform/examples/*; do
    name="${dir#"$work"/}"
    missing=""
    for src in $(grep -hoE 'source += "hashicorp/[a-z0-9]+"' "$dir"/*.tf | grep -oE 'hashicorp/[a-z0-9]+' | sort -u); do
      [[ -d "$mirror/registry.terraform.io/$src" ]] || missing="$missing ${src#hashicorp/}"
    done
    if [[ -n "$missing" ]]; then
      log "validate $name: skipped (not in $mirror:$missing)"
      continue
    fi
    if (cd "$dir" && TF_CLI_CONFIG_FILE="$work/cli.tfrc" terraform init -backend=false -input=false -no-color >/dev/null 2>"$work/init.err" &&
      TF_CLI_CONFIG_FILE="$work/cli.tfrc" terraform validate -no-color >&2); then
      log "validate $name: ok"
    else
      cat "$work/init.err" >&2 2>/dev/null || true
      log "validate $name: FAILED"
      validate_rc=1
    fi
  done
  rm -rf "$work"
else
  log "no terraform binary or provider mirror ($mirror): skipping terraform validate"
fi

if [[ "$parse_rc" -ne 0 || "$checkov_rc" -ne 0 || "$failed" -ne 0 || "$fmt_rc" -ne 0 || "$validate_rc" -ne 0 ]]; then
  log "FAILED: parse/templates rc=$parse_rc, checkov rc=$checkov_rc ($failed failed checks), fmt rc=$fmt_rc, validate rc=$validate_rc"
  [[ "$failed" -ne 0 ]] || failed=1
  echo "terraform: $passed passed, $failed failed, $skipped skipped"
  exit 1
fi
echo "terraform: $passed passed, 0 failed, $skipped skipped"
