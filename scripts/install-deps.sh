#!/usr/bin/env bash
# Installs every build and test dependency from Debian 12 packages. The one install list of the project:
# the README commands and CI all call this script.
set -euo pipefail
# openmpi-bin + libopenmpi-dev: data-parallel `mpirun -np N unipelt train` (built when CMake finds MPI);
# slurm-wlm + munge: the real one-node Slurm the sweep's Slurm test starts (docs/cluster.md).
PACKAGES=(build-essential cmake pkg-config libopenblas-dev catch2 libcli11-dev nlohmann-json3-dev libutf8proc-dev
          libzip-dev librsvg2-bin curl ca-certificates unzip zip clang libclang-rt-14-dev openmpi-bin libopenmpi-dev
          slurm-wlm munge)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: missing packages: ${missing[*]}; run this script as root or install sudo" >&2
    exit 1
  fi
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
