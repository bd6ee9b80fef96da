#!/usr/bin/env bash
# Install everything the course needs on a fresh Debian 12 / Python 3.11 machine.
#   scripts/setup.sh          python packages (the course)
#   scripts/setup.sh --dev    + test tools and Debian's Chromium for the browser test
# Idempotent: what is already installed is skipped, so running it twice is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
DEV=0
[[ "${1:-}" == "--dev" ]] && DEV=1

extra=""
[[ $DEV == 1 ]] && extra="[dev]"
echo "[setup] pip install -e .${extra}  (already-installed packages are skipped)"
"$PY" -m pip install -q -e ".${extra}"

if [[ $DEV == 1 ]] && [[ ! -x /usr/bin/chromium ]]; then
  echo "[setup] apt-get install chromium (for the real-browser slider test)"
  SUDO=""; [[ $(id -u) != 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
echo "[setup] done"
