#!/usr/bin/env bash
# Create or refresh the project's virtual environment in .venv and install Queqiao into it.
# Usage: scripts/bootstrap-venv.sh [EXTRAS]   e.g. "test"
# On a fresh Debian/Ubuntu machine python3-venv (and a C compiler for the Cython kernels)
# may be missing: as root they are installed; otherwise we stop and say what to install.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
extras=${1:-}

need_apt=()
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "error: Queqiao needs Python >= 3.11 ($PYTHON is $("$PYTHON" --version 2>&1))" >&2; exit 1; }
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv)
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
"$PYTHON" - <<'PY' 2>/dev/null || need_apt+=(python3-dev)
import sysconfig, os, sys
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)
PY
if ((${#need_apt[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian packages: ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  elif [[ " ${need_apt[*]} " == *" python3-venv "* ]]; then
    echo "error: Python's venv module is missing; run: sudo apt-get install ${need_apt[*]}" >&2; exit 1
  else
    echo "warning: no C toolchain (${need_apt[*]}); the pure-Python kernels will be used." >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# pip passes the build backend's stderr straight through, and setuptools fills it with
# notices about editable installs; the whole output goes to a log instead, and only the
# warnings that concern us (pip's, and setup.py's about kernels not built) are shown.
log=.venv/install.log
pip_install() {
  if ! .venv/bin/python -m pip install -q "$@" >>"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "error: pip install $* failed (whole log: $log)" >&2
    exit 1
  fi
}
: >"$log"
pip_install --upgrade pip setuptools wheel
spec="."
[ -n "$extras" ] && spec=".[${extras}]"
# Editable install: the Cython kernels are compiled next to their sources.
pip_install -e "$spec"
grep -E '^(WARNING|ERROR|error):' "$log" >&2 || true
.venv/bin/python -c 'import cython_ext; print(f"queqiao kernels: {cython_ext.BACKEND}")'
