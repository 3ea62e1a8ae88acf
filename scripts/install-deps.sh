#!/usr/bin/env bash
# Installs the Debian packages the local cluster and the tests use; a no-op when they are present.
set -euo pipefail
packages=(iproute2 nftables socat conntrack time procps)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || { echo "Go is needed to build the control plane" >&2; exit 1; }
command -v cargo >/dev/null || { echo "Rust (rustup) is needed" >&2; exit 1; }
