#!/usr/bin/env bash
# Board side of the Queqiao emulator install: runs ON the board (as root), from the files
# deploy/board/install.sh copied there (or by hand, or inside the arm-check rootfs).
#
#   sudo bash board-setup.sh --sdist queqiao-0.1.0.tar.gz --mission zhurong \
#        --downlink udp://GROUND-STATION:10015 --uplink udp://BOARD-ADDRESS:10016 [--sdls-keys FILE]
#
# The uplink is bound to the address given; there is no default (a new env file needs --uplink).
#
# What it does:
#   1. apt: python3, python3-venv, and python3-dev + gcc for the compiled kernels
#      (--no-compiler: skip those; the install then falls back to the pure-Python
#      kernels with a RuntimeWarning; --no-apt: install nothing with apt)
#   2. a venv at /opt/queqiao/venv (--venv), Queqiao installed into it from the sdist
#      (pip builds it here: the Cython kernels are compiled for this board)
#   3. the unit queqiao-flightsw@.service and /etc/queqiao/flightsw-MISSION.env
#   4. systemctl enable --now queqiao-flightsw@MISSION (--no-start: enable only;
#      --no-systemd: neither, e.g. in a chroot)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
sdist=""
mission=zhurong
downlink=""
uplink=""
uplink_given=0
sdls_keys=""
opts=""
venv=/opt/queqiao/venv
etc=/etc
# Next to this script (as install.sh copies them), else where they are in a checkout.
unit="$here/queqiao-flightsw@.service"
[ -f "$unit" ] || unit="$here/../systemd/queqiao-flightsw@.service"
env_template="$here/flightsw.env.example"
[ -f "$env_template" ] || env_template="$here/../systemd/flightsw.env.example"
use_apt=1
compiler=1
use_systemd=1
start=1

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
  cat <<USAGE
Options:
  --sdist FILE         the Queqiao source distribution (required)
  --mission NAME       spacecraft to emulate (default: $mission)
  --downlink URL       where frames go, e.g. udp://192.0.2.10:10015 (required on first install)
  --uplink URL         where telecommands come from (default: $uplink; "" for the
                       downlink's own return direction: tcp, serial, mqtt)
  --opts "ARGS"        more options for 'flightsw run' (FLIGHTSW_OPTS)
  --venv DIR           virtual environment (default: $venv)
  --etc DIR            configuration root (default: $etc; units go to DIR/systemd/system)
  --unit FILE          unit file to install (default: next to this script)
  --env-template FILE  env file template (default: next to this script)
  --no-apt             install no Debian packages
  --no-compiler        do not install gcc/python3-dev (pure-Python kernels)
  --no-systemd         install files only (no systemctl: chroots, containers)
  --no-start           enable the service but do not start it
USAGE
}

die() { echo "board-setup: error: $*" >&2; exit 1; }
say() { echo "board-setup: $*"; }

while (($#)); do
  case "$1" in
    --sdist) sdist=${2:?--sdist needs a file}; shift 2 ;;
    --mission) mission=${2:?--mission needs a name}; shift 2 ;;
    --downlink) downlink=${2:?--downlink needs a URL}; shift 2 ;;
    --uplink) uplink=${2-}; uplink_given=1; shift 2 ;;  # "": the downlink's return direction (tcp, serial, mqtt)
    --sdls-keys) sdls_keys=${2:?--sdls-keys needs a file}; shift 2 ;;
    --opts) opts=${2-}; shift 2 ;;
    --venv) venv=${2:?--venv needs a directory}; shift 2 ;;
    --etc) etc=${2:?--etc needs a directory}; shift 2 ;;
    --unit) unit=${2:?--unit needs a file}; shift 2 ;;
    --env-template) env_template=${2:?--env-template needs a file}; shift 2 ;;
    --no-apt) use_apt=0; shift ;;
    --no-compiler) compiler=0; shift ;;
    --no-systemd) use_systemd=0; shift ;;
    --no-start) start=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

[ -n "$sdist" ] || die "--sdist FILE is required"
[ -f "$sdist" ] || die "no such sdist: $sdist"
[[ "$mission" =~ ^[a-z0-9][a-z0-9_-]*$ ]] || die "--mission '$mission': use the spacecraft's name, e.g. zhurong"
[ -f "$unit" ] || die "no unit file at $unit"
[ -z "$sdls_keys" ] || [ -f "$sdls_keys" ] || die "no SDLS key file $sdls_keys"
for url in "$downlink" "$uplink"; do
  [ -z "$url" ] || [[ "$url" == *://* ]] || die "'$url' is not a link URL (udp://HOST:PORT, tcp://..., serial:///dev/..., mqtt://...)"
done
if [ "$(id -u)" != 0 ] && { ((use_apt)) || ((use_systemd)) || [ "$venv" = /opt/queqiao/venv ]; }; then
  die "run as root (sudo), or with --no-apt --no-systemd --venv DIR --etc DIR for a private install"
fi

start_s=$(date +%s)
say "board: $(uname -m), $(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown OS}" || echo "unknown OS")"

# ---------------------------------------------------------------------------- 1. Debian packages
if ((use_apt)); then
  command -v apt-get >/dev/null || die "apt-get not found: install python3 (>= 3.11) and python3-venv yourself, then rerun with --no-apt"
  pkgs=(python3 python3-venv python3-pip ca-certificates)
  ((compiler)) && pkgs+=(python3-dev gcc libc6-dev)
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed (network? /etc/apt/sources.list?)"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
  fi
fi

# ---------------------------------------------------------------------------- 2. venv + Queqiao
py=$(command -v python3 || true)
[ -n "$py" ] || die "python3 not found"
"$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || die "Queqiao needs Python >= 3.11; this board has $("$py" --version 2>&1) (use Raspberry Pi OS / Debian bookworm or newer)"
"$py" -c 'import venv, ensurepip' 2>/dev/null || die "python3-venv is missing: apt-get install python3-venv"
if ! command -v cc >/dev/null 2>&1 && ! command -v gcc >/dev/null 2>&1; then
  echo "board-setup: WARNING: no C compiler: the Cython kernels will not be built; the pure-Python twins" \
       "will be used (identical results, slower). Install gcc and python3-dev and rerun to compile them." >&2
fi

if [ ! -x "$venv/bin/python" ]; then
  say "creating the virtual environment $venv"
  mkdir -p "$(dirname "$venv")"
  "$py" -m venv "$venv"
fi
"$venv/bin/python" -m pip --version >/dev/null || die "pip is missing in $venv"
if "$venv/bin/python" -m pip show -q queqiao >/dev/null 2>&1; then
  "$venv/bin/python" -m pip uninstall -y -q queqiao
fi
say "pip install $(basename "$sdist") (builds the kernels for $(uname -m); a few minutes on a Pi)"
pip_start=$(date +%s)
pip_log=$(mktemp)
if ! "$venv/bin/python" -m pip install --no-cache-dir --progress-bar off -v "$sdist" >"$pip_log" 2>&1; then
  tail -n 40 "$pip_log" >&2
  rm -f "$pip_log"
  die "pip install failed (output above); check the network / package index from the board"
fi
grep -E "^ *WARNING: (Cython|kernel|Cython kernels)" "$pip_log" | sort -u >&2 || true
rm -f "$pip_log"
say "installed in $(( $(date +%s) - pip_start )) s"

# The kernels in use (a RuntimeWarning names any that fell back to pure Python).
backend=$(cd / && "$venv/bin/python" -I -W always -c 'import cython_ext; print(cython_ext.BACKEND)')
version=$("$venv/bin/flightsw" --version)
say "$version; kernels: $backend"
if [ "$backend" != compiled ]; then
  echo "board-setup: WARNING: kernels are '$backend', not compiled: the emulator works, but slower." >&2
fi

# ---------------------------------------------------------------------------- 3. unit + env file
unit_dir="$etc/systemd/system"
mkdir -p "$unit_dir" "$etc/queqiao"
install -m 0644 "$unit" "$unit_dir/queqiao-flightsw@.service"
if [ "$venv" != /opt/queqiao/venv ]; then
  sed -i "s#/opt/queqiao/venv#$venv#g" "$unit_dir/queqiao-flightsw@.service"
fi
env_file="$etc/queqiao/flightsw-$mission.env"
if [ -f "$env_file" ] && [ -z "$downlink" ]; then
  say "keeping $env_file"
else
  [ -n "$downlink" ] || die "--downlink URL is required (no $env_file yet)"
  ((uplink_given)) || die "--uplink URL is required (no all-interfaces default): the board address telecommands \
arrive on, e.g. udp://BOARD-ADDRESS:10016, or --uplink '' for the downlink's return direction"
  [ -f "$env_file" ] && cp -p "$env_file" "$env_file.bak"
  tmp_env=$(mktemp "$etc/queqiao/.flightsw-env.XXXXXX")
  if [ -f "$env_template" ]; then
    # The template's comments, with our values in place of its examples.
    awk -v d="$downlink" -v u="$uplink" -v o="$opts" '
      /^DOWNLINK=/ { print "DOWNLINK=" d; next }
      /^UPLINK=/ { print "UPLINK=" u; next }
      /^FLIGHTSW_OPTS=/ { print "FLIGHTSW_OPTS=" o; next }
      { print }' "$env_template" >"$tmp_env"
  else
    printf 'DOWNLINK=%s\nUPLINK=%s\nFLIGHTSW_OPTS=%s\n' "$downlink" "$uplink" "$opts" >"$tmp_env"
  fi
  chmod 0640 "$tmp_env"
  mv -f "$tmp_env" "$env_file"
  say "wrote $env_file (DOWNLINK=$downlink UPLINK=$uplink)"
fi

# SDLS keys: root's file, handed to the unit's dynamic user as a systemd credential (the service
# reads its own 0400 copy under $CREDENTIALS_DIRECTORY; the file itself stays 0600 root).
if [ -n "$sdls_keys" ]; then
  install -d -m 0700 "$etc/queqiao/keys"
  install -m 0600 "$sdls_keys" "$etc/queqiao/keys/$mission.sdls.toml"
  dropin="$unit_dir/queqiao-flightsw@$mission.service.d"
  install -d -m 0755 "$dropin"
  printf '[Service]\nLoadCredential=sdls-keys:%s\nEnvironment=SDLS_OPTS=--sdls-keys=%%d/sdls-keys\n' \
    "/etc/queqiao/keys/$mission.sdls.toml" >"$dropin/sdls.conf"
  chmod 0644 "$dropin/sdls.conf"
  say "installed the SDLS keys as $etc/queqiao/keys/$mission.sdls.toml (credential of $service)"
fi

# ---------------------------------------------------------------------------- 4. systemd
service="queqiao-flightsw@$mission.service"
if ((use_systemd)); then
  command -v systemctl >/dev/null || die "systemctl not found (use --no-systemd and start flightsw yourself)"
  systemctl daemon-reload
  if ((start)); then
    systemctl enable --now "$service"
    sleep 3
    if ! systemctl is-active --quiet "$service"; then
      journalctl -u "$service" -n 30 --no-pager >&2 || true
      die "$service did not stay up (journal above)"
    fi
    systemctl --no-pager --lines=5 status "$service" || true
  else
    systemctl enable "$service"
  fi
fi

say "done in $(( $(date +%s) - start_s )) s: $service ($version, kernels $backend)"
