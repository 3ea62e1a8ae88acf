#!/usr/bin/env bash
# Checks the Helm chart charts/svcnet offline:
#   1. its crds/ folder is a copy of crds/yaml (else: run `make crds`);
#   2. every key in values.yaml has a comment above it;
#   3. `helm lint --strict` with the default values and every charts/svcnet/ci/*-values.yaml
#      (cert-manager on, every option set, a single replica);
#   4. the manifests `helm template` renders for each of those, CRDs included, validate against the
#      Kubernetes JSON schemas (kubernetes-validate, strict: unknown fields refused) for the oldest
#      Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest the pinned
#      kubernetes-validate has schemas for; the chart's own custom resources (SvcnetConfig) validate
#      against the CRDs in its crds/ folder instead. Only cert-manager's kinds go unchecked.
# Tools: helm from scripts/install-tools.sh; kubernetes-validate, pinned, in a venv cached under
# $SVCNET_CACHE (a second run installs nothing).
set -euo pipefail
cd "$(dirname "$0")/.."

chart=charts/svcnet
# The pinned validator and everything it pulls in, so the venv is the same everywhere.
kv_version=1.37.0
kv_requirements=(
  "kubernetes-validate==$kv_version"
  attrs==26.1.0
  importlib_resources==7.1.0
  jsonschema==4.26.0
  jsonschema-specifications==2025.9.1
  packaging==26.3
  PyYAML==6.0.3
  referencing==0.37.0
  rpds-py==2026.9.1
  typing_extensions==4.16.0
)

fail() {
  echo "check-chart: $*" >&2
  exit 1
}

# 1. The chart's CRDs are the generated ones.
if ! diff -r crds/yaml "$chart/crds" >/dev/null; then
  diff -r crds/yaml "$chart/crds" >&2 || true
  fail "$chart/crds differs from crds/yaml: run 'make crds' (it regenerates crds/yaml and copies it into the chart)"
fi
echo "crds: $chart/crds matches crds/yaml"

# 2. values.yaml documented key by key.
python3 - "$chart/values.yaml" <<'PY'
import re, sys
path = sys.argv[1]
lines = open(path).read().splitlines()
key = re.compile(r"^\s*[A-Za-z0-9_.\-/\"']+\s*:(\s|$)")
missing = []
for i, line in enumerate(lines):
    if line.lstrip().startswith(("#", "-")) or not key.match(line):
        continue
    above = lines[i - 1].strip() if i > 0 else ""
    if not above.startswith("#"):
        missing.append(f"{path}:{i + 1}: {line.strip()}")
if missing:
    print("check-chart: values.yaml keys without a comment above them:", *missing, sep="\n  ", file=sys.stderr)
    sys.exit(1)
PY
echo "values.yaml: every key documented"

# 3. helm lint.
PATH="$(bash scripts/install-tools.sh):$PATH"
value_sets=("")
for f in "$chart"/ci/*-values.yaml; do
  value_sets+=("$f")
done
for values in "${value_sets[@]}"; do
  args=()
  [ -n "$values" ] && args=(--values "$values")
  if ! out="$(helm lint --strict "$chart" "${args[@]}" 2>&1)"; then
    echo "$out" >&2
    fail "helm lint --strict failed with ${values:-the default values}"
  fi
  echo "helm lint --strict: ok (${values:-default values})"
done

# 4. Schema validation of the rendered manifests.
cache="${SVCNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/svcnet}"
venv="$cache/kubernetes-validate-$kv_version"
stamp="$(python3 --version) ${kv_requirements[*]}"
if [ ! -f "$venv/.installed" ] || [ "$(cat "$venv/.installed")" != "$stamp" ]; then
  echo "installing kubernetes-validate $kv_version into $venv"
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "${kv_requirements[@]}"
  echo "$stamp" >"$venv/.installed"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
n=0
for values in "${value_sets[@]}"; do
  n=$((n + 1))
  args=()
  [ -n "$values" ] && args=(--values "$values")
  helm template svcnet "$chart" --namespace kube-system --include-crds "${args[@]}" >"$work/$n.yaml"
  echo "$work/$n.yaml ${values:-default values}" >>"$work/index"
done
"$venv/bin/python" - "$chart" "$work/index" <<'PY'
"""Every rendered object against the Kubernetes JSON schemas (kubernetes-validate, strict: unknown
fields refused) for the oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest
kubernetes-validate knows; the chart's custom resources against the chart's CRDs instead."""
import glob, re, sys
import jsonschema, kubernetes_validate, yaml

chart, index = sys.argv[1], sys.argv[2]
# No schema anywhere offline: cert-manager's kinds (their CRDs are cert-manager's). Only these may
# go unchecked, so a mistyped apiVersion cannot pass as "no schema".
UNCHECKED = {("cert-manager.io/v1", "Certificate"), ("cert-manager.io/v1", "Issuer")}

kube_version = yaml.safe_load(open(f"{chart}/Chart.yaml"))["kubeVersion"]
oldest = re.fullmatch(r">=\s*(\d+\.\d+\.\d+)(-0)?", kube_version.strip())
if not oldest:
    sys.exit(f"check-chart: cannot read the oldest Kubernetes from kubeVersion {kube_version!r}")
versions = [oldest.group(1), kubernetes_validate.latest_version()]

def strict(schema):
    """A CRD's openAPIV3Schema as JSON Schema: nullable honoured, unknown fields refused (as the
    apiserver's strict field validation does)."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if schema.pop("nullable", False) and "type" in schema:
            schema["type"] = [schema["type"], "null"]
        if "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    return schema

crds = {}
for path in sorted(glob.glob(f"{chart}/crds/*.yaml")):
    for crd in yaml.safe_load_all(open(path)):
        if not crd:
            continue
        spec = crd["spec"]
        for v in spec["versions"]:
            schema = dict(v["schema"]["openAPIV3Schema"])
            schema["properties"] = dict(schema.get("properties", {}), apiVersion={"type": "string"},
                                        kind={"type": "string"}, metadata={"type": "object"})
            crds[(f"{spec['group']}/{v['name']}", spec["names"]["kind"])] = strict(schema)
own_groups = {api.split("/")[0] for api, _ in crds}

failed = False
for line in open(index):
    path, label = line.rstrip("\n").split(" ", 1)
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    counts = {"kubernetes": 0, "crd": 0, "unchecked": 0}
    for doc in docs:
        key = (doc["apiVersion"], doc["kind"])
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if key in crds:
            for e in jsonschema.Draft7Validator(crds[key]).iter_errors(doc):
                print(f"ERROR ({label}) {name}: .{'.'.join(map(str, e.path))}: {e.message}")
                failed = True
            counts["crd"] += 1
        elif doc["apiVersion"].split("/")[0] in own_groups:
            print(f"ERROR ({label}) {name}: no CRD in {chart}/crds for {key[0]} {key[1]}")
            failed = True
        elif key in UNCHECKED:
            counts["unchecked"] += 1
        else:
            for version in versions:
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.ValidationError as e:
                    print(f"ERROR ({label}) {name} (Kubernetes {version}): .{'.'.join(map(str, e.path))}: {e.message}")
                    failed = True
                except kubernetes_validate.SchemaNotFoundError as e:
                    print(f"ERROR ({label}) {name}: {e.message}")
                    failed = True
            counts["kubernetes"] += 1
    print(f"validated ({label}): {counts['kubernetes']} objects against Kubernetes {' and '.join(versions)}, "
          f"{counts['crd']} against the chart's CRDs; {counts['unchecked']} cert-manager objects unchecked")
sys.exit(1 if failed else 0)
PY
echo "check-chart: ok"
