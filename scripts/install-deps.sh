#!/usr/bin/env bash
# Installs the Debian packages causalsweep needs that this machine lacks (the CUDA toolkit, when
# present, comes with the machine). Safe to run again: it installs only what is missing.
set -euo pipefail
packages=(
  cmake g++ make pkg-config git
  libeigen3-dev libfmt-dev nlohmann-json3-dev libtomlplusplus-dev libcli11-dev librandom123-dev libboost-dev
  libgtest-dev libbenchmark-dev
  python3 python3-numpy python3-sklearn python3-statsmodels python3-pandas python3-mpmath  # references, peers
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
