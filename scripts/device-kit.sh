#!/usr/bin/env bash
# Build dependencies for a machine that cannot fetch them: the lent GPU machine has CMake, nvcc and a
# compiler, but none of the Debian -dev packages below and no network (bench/run_gpu.sh uses this).
#   scripts/device-kit.sh fetch [DIR]        here, with network: the .deb files into DIR (default
#                                            .device-kit/debs; .device-kit is git-ignored, so a device
#                                            call must name it in `carry`)
#   scripts/device-kit.sh unpack DIR PREFIX  there: every .deb of DIR unpacked under PREFIX (no dpkg
#                                            database touched, nothing written outside PREFIX); prints
#                                            the CMAKE_PREFIX_PATH that finds them
# The packages are install-deps.sh's libraries (headers, CMake configs and the shared libraries the
# binaries load: fmt and toml++), Debian 12's builds; about 12 MB.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)   # the default folder is the repository's, wherever this runs from
packages=(
  libeigen3-dev libfmt-dev libfmt9 nlohmann-json3-dev libtomlplusplus-dev libtomlplusplus3 libcli11-dev
  librandom123-dev libboost1.74-dev libboost-context1.74-dev libboost-context1.74.0
  libgtest-dev libbenchmark-dev libbenchmark1debian
)

usage() { echo "usage: $0 fetch [DIR] | unpack DIR PREFIX" >&2; exit 2; }

fetch() {
  local dir=$1
  mkdir -p "$dir"
  rm -f "$dir"/*.deb   # unpack takes every .deb there: no older version may stay beside a newer one
  # apt-get download writes into the current directory; _apt cannot write into root's folders, so
  # the download runs unsandboxed there (a warning, not an error).
  (cd "$dir" && apt-get download "${packages[@]}" 2>&1 | grep -v "^W: Download is performed unsandboxed" || true)
  local missing=0 p
  for p in "${packages[@]}"; do
    compgen -G "$dir/${p}_*.deb" > /dev/null || { echo "not downloaded: $p" >&2; missing=1; }
  done
  [ "$missing" -eq 0 ] || exit 1
  du -sh "$dir" >&2
}

# One .deb is an ar archive holding data.tar.{xz,zst,gz}; dpkg-deb where there is one, else ar + tar.
unpack_one() {
  local deb=$1 prefix=$2
  if command -v dpkg-deb > /dev/null; then
    dpkg-deb -x "$deb" "$prefix"
    return
  fi
  local member
  member=$(ar t "$deb" | grep '^data\.tar') || { echo "$deb: no data.tar member" >&2; exit 1; }
  case "$member" in
    *.xz) ar p "$deb" "$member" | tar -xJ -C "$prefix" ;;
    *.zst) ar p "$deb" "$member" | zstd -dc | tar -x -C "$prefix" ;;
    *.gz) ar p "$deb" "$member" | tar -xz -C "$prefix" ;;
    *) ar p "$deb" "$member" | tar -x -C "$prefix" ;;
  esac
}

unpack() {
  local dir=$1 prefix=$2 deb count=0
  compgen -G "$dir/*.deb" > /dev/null || { echo "no .deb files in $dir (run '$0 fetch' on a machine with network)" >&2; exit 1; }
  mkdir -p "$prefix"
  for deb in "$dir"/*.deb; do
    unpack_one "$deb" "$prefix"
    count=$((count + 1))
  done
  echo "unpacked $count packages under $prefix" >&2
  # CMake finds share/<pkg>/cmake and share/cmake/<pkg> under the first, the multiarch lib/cmake
  # configs under the second even where the compiler reports no library architecture.
  echo "$prefix/usr;$prefix/usr/lib/x86_64-linux-gnu/cmake"
}

case "${1:-}" in
  fetch) [ $# -le 2 ] || usage; fetch "${2:-$root/.device-kit/debs}" ;;
  unpack) [ $# -eq 3 ] || usage; unpack "$2" "$3" ;;
  *) usage ;;
esac
