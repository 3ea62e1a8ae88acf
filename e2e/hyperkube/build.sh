#!/usr/bin/env bash
# Build (or reuse) the hyperkube binary: upstream kube-apiserver,
# kube-controller-manager, kube-scheduler, kube-proxy (k8s.io/kubernetes
# v1.36.3) plus embedded etcd, linked as one binary.
#
# Prints ONLY the absolute path of the binary on stdout; progress goes to
# stderr. The binary is cached under
#   ${SVCNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/svcnet}/hyperkube-<key16>/hyperkube
# where <key> = sha256 over go.mod, go.sum, the module's non-test *.go files
# (sorted by path), `go version` and the build recipe below. A cache hit
# exits immediately without invoking the compiler.
#
# GOCACHE / GOMODCACHE are left at their defaults (outside the repo) so a
# cache miss is still an incremental Go build.
#
# BUILD_PACKAGE=k8s.io/kubernetes/cmd/kube-proxy builds that upstream main
# package alone instead (the same module, flags and cache scheme; the binary
# is named after the package), for benchmarks that run one component by itself.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

GO="${GO:-go}"
if ! command -v "$GO" >/dev/null 2>&1; then
  if [[ -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go; else
    echo "build.sh: no go toolchain found (set GO=...)" >&2; exit 1
  fi
fi

# Keep in step with k8s.io/kubernetes in go.mod.
KUBE_VERSION=v1.36.3
KUBE_MAJOR=1
KUBE_MINOR=36

ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X ${pkg}.gitVersion=${KUBE_VERSION}"
  ldflags+=" -X ${pkg}.gitMajor=${KUBE_MAJOR}"
  ldflags+=" -X ${pkg}.gitMinor=${KUBE_MINOR}"
  ldflags+=" -X ${pkg}.gitTreeState=clean"
  # The module zip carries no git metadata; blank the "$Format:%H$" placeholder.
  ldflags+=" -X ${pkg}.gitCommit="
done
# Static build (upstream also builds these four components with CGO_ENABLED=0).
export CGO_ENABLED=0
# -buildvcs=false: VCS stamping adds nothing (the version comes from ldflags)
# and fails in a checkout without commits.
buildflags=(-trimpath -buildvcs=false)
recipe="CGO_ENABLED=${CGO_ENABLED} GOOS=$("$GO" env GOOS) GOARCH=$("$GO" env GOARCH) ${buildflags[*]} -ldflags=${ldflags}"
package="${BUILD_PACKAGE:-.}"
name=hyperkube
if [[ "$package" != . ]]; then
  name="$(basename "$package")"
  recipe+=" package=${package}"
fi

key="$(
  {
    # Test files (allocbench/*_test.go) do not affect the binary.
    find . -type f \( -name go.mod -o -name go.sum -o \( -name '*.go' ! -name '*_test.go' \) \) \
      -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    "$GO" version
    echo "$recipe"
  } | sha256sum | cut -c1-64
)"

cache_root="${SVCNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/svcnet}"
out_dir="${cache_root}/${name}-${key:0:16}"
out="${out_dir}/${name}"

if [[ -x "$out" ]]; then
  echo "build.sh: cache hit ${out}" >&2
  echo "$out"
  exit 0
fi

mkdir -p "$out_dir"
tmp="$(mktemp "${out_dir}/.${name}.XXXXXX")"
trap 'rm -f "$tmp"' EXIT

echo "build.sh: building ${name} ${KUBE_VERSION} ($("$GO" version)) -> ${out}" >&2
start=$SECONDS
"$GO" build "${buildflags[@]}" -ldflags="$ldflags" -o "$tmp" "$package" >&2
chmod 0755 "$tmp"
mv -f "$tmp" "$out"   # atomic within the same directory
trap - EXIT
echo "build.sh: built in $((SECONDS - start))s ($(du -h "$out" | cut -f1))" >&2
echo "$out"
