#!/usr/bin/env bash
# Installs the Debian packages causalsweep needs that this machine lacks (the CUDA toolkit, when
# present, comes with the machine). Safe to run again: it installs only what is missing.
set -euo pipefail
packages=(
  cmake g++ make pkg-config git
  libeigen3-dev libfmt-dev nlohmann-json3-dev libtomlplusplus-dev libcli11-dev librandom123-dev libboost-dev
  libboost-context-dev  # fibers for the tests' emulation of GPU blocks (kernels/host_threads.hpp)
  libgtest-dev libbenchmark-dev
  python3 python3-numpy python3-sklearn python3-statsmodels python3-pandas python3-mpmath  # references, peers
  munge slurmctld slurmd slurm-client  # the test's one-node SLURM cluster (tests/slurm/)
  gnuplot-nox fonts-dejavu-core chromium  # `causalsweep plot` figures; the report opened in headless Chromium (tests)
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
  # Package scripts must not start daemons (the SLURM test starts its own, on its own ports):
  # Debian's policy-rc.d, as container images ship it; removed again if it was not there.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d > /dev/null
    $sudo chmod 755 /usr/sbin/policy-rc.d
    trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
