#!/usr/bin/env bash
# Install the Queqiao flight-software emulator on a Raspberry Pi class board and start it
# as a service, from this checkout, over SSH.
#
#   deploy/board/install.sh --host raspberrypi.local [--user pi] [--mission zhurong] \
#       [--downlink udp://GROUND-STATION:10015] --uplink udp://BOARD-ADDRESS:10016 \
#       [--sdls-keys haiyang2d.sdls.toml]
#
# The uplink is bound to the address given, and there is no default: whoever reaches that
# port can send telecommands, so bind the board's address on the ground-station network
# (not 0.0.0.0), firewall it, and authenticate the uplink with SDLS keys (--sdls-keys;
# required by haiyang2d and ilrs-lander; docs/OPERATIONS.md "Uplink security").
#
# The board: 64-bit Raspberry Pi OS or Debian (bookworm or newer: Python >= 3.11),
# reachable with ssh as a user that may sudo (or root), with network access to the
# Debian mirror and the Python package index.
#
# Steps: (1) build a source distribution of this checkout here; (2) scp it and the
# board files to a temporary directory on the board; (3) there, board-setup.sh installs
# python3/venv/gcc with apt, creates /opt/queqiao/venv, pip-installs Queqiao (compiling
# the Cython kernels on the board, or falling back to the pure-Python twins with a
# warning when there is no compiler), installs queqiao-flightsw@.service and
# /etc/queqiao/flightsw-MISSION.env, and enables and starts queqiao-flightsw@MISSION;
# (4) it prints how to point the ground station at the board.
#
# Without --downlink the frames go to udp://<this machine, as the board sees it>:10015.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
board_dir="$repo/deploy/board"
host=""
user=""
port=""
identity=""
mission=zhurong
downlink=""
uplink=""
uplink_given=0
sdls_keys=""
opts=""
ref=""
extra=()
sdist_only=""
dry_run=0
PYTHON=${PYTHON:-python3}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
  cat <<USAGE
Options:
  --host HOST          the board's name or address (required)
  --user USER          ssh user (default: your ssh configuration's; sudo is used unless root)
  --port PORT          ssh port
  --identity FILE      ssh private key
  --mission NAME       spacecraft to emulate (default: $mission)
  --downlink URL       where the frames go (default: udp://<this machine>:10015)
  --uplink URL         where telecommands come from, bound as given (required; e.g.
                       udp://BOARD-ADDRESS:10016; "" for the downlink's own return
                       direction: tcp, serial, mqtt)
  --sdls-keys FILE     SDLS key file for the spacecraft (mode 0600/0640), installed on the
                       board as /etc/queqiao/keys/MISSION.sdls.toml (root, 0600) and given
                       to the service as a systemd credential
  --opts "ARGS"        more options for 'flightsw run'
  --ref GIT-REF        build from a committed revision (git archive) instead of the working tree
  --no-compiler        do not install gcc/python3-dev on the board (pure-Python kernels)
  --no-start           enable the service but do not start it
  --sdist-only DIR     only build the source distribution into DIR and print its path
  --dry-run            build the sdist, then print the scp/ssh commands instead of running them
  -h, --help           this text
USAGE
}

die() { echo "install: error: $*" >&2; exit 1; }
say() { echo "install: $*"; }

while (($#)); do
  case "$1" in
    --host) host=${2:?--host needs a name}; shift 2 ;;
    --user) user=${2:?--user needs a name}; shift 2 ;;
    --port) port=${2:?--port needs a number}; shift 2 ;;
    --identity) identity=${2:?--identity needs a file}; shift 2 ;;
    --mission) mission=${2:?--mission needs a name}; shift 2 ;;
    --downlink) downlink=${2:?--downlink needs a URL}; shift 2 ;;
    --uplink) uplink=${2-}; uplink_given=1; shift 2 ;;
    --sdls-keys) sdls_keys=${2:?--sdls-keys needs a file}; shift 2 ;;
    --opts) opts=${2-}; shift 2 ;;
    --ref) ref=${2:?--ref needs a git revision}; shift 2 ;;
    --no-compiler|--no-start) extra+=("$1"); shift ;;
    --sdist-only) sdist_only=${2:?--sdist-only needs a directory}; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

# ---------------------------------------------------------------------------- 1. the sdist
# Built from a clean copy (working tree: tracked and untracked files that git does not
# ignore; or a committed revision with --ref), so no build products of this checkout
# (.venv, compiled .so/.c) end up in it and the checkout is not touched.
build_sdist() {  # build_sdist OUTDIR -> prints the sdist's path
  local outdir=$1 src
  command -v git >/dev/null || die "git is needed to pick the files of the checkout"
  src=$(mktemp -d)
  if [ -n "$ref" ]; then
    git -C "$repo" archive --format=tar "$ref" | tar -x -C "$src" || die "git archive $ref failed"
  else
    (cd "$repo" && git ls-files -z --cached --others --exclude-standard \
      | xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh \
      | tar --null -T - -cf -) | tar -x -C "$src"
  fi
  mkdir -p "$outdir"
  # QUEQIAO_NO_CYTHON: no C files are generated here; the board compiles from the .pyx sources.
  if "$PYTHON" -m build --version >/dev/null 2>&1 && "$PYTHON" -c 'import setuptools' 2>/dev/null; then
    (cd "$src" && QUEQIAO_NO_CYTHON=1 "$PYTHON" -m build --sdist --no-isolation --skip-dependency-check \
       --outdir "$outdir" >"$src/.build.log" 2>&1) || { tail -n 30 "$src/.build.log" >&2; die "building the sdist failed"; }
  else
    "$PYTHON" -c 'import setuptools' 2>/dev/null || die "$PYTHON has neither 'build' nor setuptools: pip install build"
    (cd "$src" && QUEQIAO_NO_CYTHON=1 "$PYTHON" setup.py -q sdist --dist-dir "$outdir" >"$src/.build.log" 2>&1) \
      || { tail -n 30 "$src/.build.log" >&2; die "building the sdist failed"; }
  fi
  rm -rf "$src"
  local built
  built=$(ls -t "$outdir"/queqiao-*.tar.gz 2>/dev/null | head -n 1)
  [ -n "$built" ] || die "no sdist was produced in $outdir"
  local listing
  listing=$(tar -tzf "$built")
  grep -q '/cython_ext/_crc\.pyx$' <<<"$listing" || die "$built lacks the Cython sources (cython_ext/*.pyx)"
  echo "$built"
}

if [ -n "$sdist_only" ]; then
  build_sdist "$sdist_only"
  exit 0
fi

[ -n "$host" ] || { usage >&2; die "--host is required"; }
((uplink_given)) || die "--uplink URL is required (no all-interfaces default): the board address telecommands \
arrive on, e.g. --uplink udp://BOARD-ADDRESS:10016, or --uplink '' for the downlink's return direction"
case "$uplink" in
  *://0.0.0.0:*|*://\[::\]:*) echo "install: WARNING: --uplink $uplink listens on every interface of the board;" \
    "prefer its address on the ground-station network, and firewall the port" >&2 ;;
esac
if [ -n "$sdls_keys" ]; then
  [ -f "$sdls_keys" ] || die "no SDLS key file $sdls_keys"
  (( ($(stat -c %a "$sdls_keys") & 8#007) == 0 )) || die "SDLS key file $sdls_keys is readable by others: chmod 0600 $sdls_keys"
fi
[[ "$mission" =~ ^[a-z0-9][a-z0-9_-]*$ ]] || die "--mission '$mission': use the spacecraft's name, e.g. zhurong"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say "building the source distribution${ref:+ of $ref}"
sdist=$(build_sdist "$work/dist")
say "built $(basename "$sdist")"

# ---------------------------------------------------------------------------- 2. ssh/scp
target=${user:+$user@}$host
ssh_opts=(-o BatchMode=yes -o ConnectTimeout=15)
scp_opts=(-o BatchMode=yes -o ConnectTimeout=15)
[ -n "$port" ] && { ssh_opts+=(-p "$port"); scp_opts+=(-P "$port"); }
[ -n "$identity" ] && { ssh_opts+=(-i "$identity"); scp_opts+=(-i "$identity"); }

run() {  # print in dry-run mode, else run
  if ((dry_run)); then printf '+'; printf ' %q' "$@"; printf '\n'; else "$@"; fi
}

if ((dry_run)); then
  remote_dir=/tmp/queqiao-install.XXXXXX
  client_ip=GROUND-STATION
  remote_user=$([ "$user" = root ] && echo root || echo user)
else
  command -v ssh >/dev/null && command -v scp >/dev/null || die "ssh and scp are needed (apt-get install openssh-client)"
  say "connecting to $target"
  remote_info=$(ssh "${ssh_opts[@]}" "$target" 'echo "$(id -u) ${SSH_CLIENT%% *} $(uname -m)"; mktemp -d /tmp/queqiao-install.XXXXXX') \
    || die "cannot ssh to $target (BatchMode: set up key authentication first: ssh-copy-id $target)"
  read -r remote_uid client_ip board_arch <<<"$(sed -n 1p <<<"$remote_info")"
  remote_dir=$(sed -n 2p <<<"$remote_info")
  remote_user=$([ "$remote_uid" = 0 ] && echo root || echo user)
  say "board: $board_arch; files go to $remote_dir"
fi
[ -n "$downlink" ] || downlink="udp://${client_ip}:10015"

run scp "${scp_opts[@]}" "$sdist" "$board_dir/board-setup.sh" "$repo/deploy/systemd/queqiao-flightsw@.service" \
  "$repo/deploy/systemd/flightsw.env.example" ${sdls_keys:+"$sdls_keys"} "$target:$remote_dir/"

setup=(bash "$remote_dir/board-setup.sh" --sdist "$remote_dir/$(basename "$sdist")" --mission "$mission"
       --downlink "$downlink" --uplink "$uplink" --opts "$opts" ${extra[@]+"${extra[@]}"})
[ -n "$sdls_keys" ] && setup+=(--sdls-keys "$remote_dir/$(basename "$sdls_keys")")
remote_cmd=$(printf ' %q' "${setup[@]}")
[ "$remote_user" = root ] || remote_cmd="sudo$remote_cmd"
# -t: sudo may ask for a password.
status=0
run ssh -t "${ssh_opts[@]}" "$target" "$remote_cmd; status=\$?; rm -rf $(printf %q "$remote_dir"); exit \$status" || status=$?
((status == 0)) || die "the install on $host failed (exit $status); output above"

# ---------------------------------------------------------------------------- 3. what next
gs_port=${downlink##*:}
if ((dry_run)); then
  say "dry run: nothing was copied or installed"
  exit 0
fi
state=running
[[ " ${extra[*]-} " == *" --no-start "* ]] && state="installed and enabled (not started)"
cat <<NEXT

install: queqiao-flightsw@$mission is $state on $host, sending frames to $downlink.
  On the ground station, receive them with a link in /etc/queqiao/groundstation.toml:

      [[links]]
      name = "board-$host"
      url = "udp://0.0.0.0:${gs_port%%/*}"     # the port of --downlink; bind address of this machine
      format = "frames"
      spacecraft = "$mission"

  then: sudo systemctl restart queqiao-groundstation   (or: groundstation run --config FILE)
  Telecommands go to the board's uplink, $(if [ -n "$uplink" ]; then echo "${uplink/0.0.0.0/$host}"; else echo "the downlink's return direction"; fi)$(if [ -n "$sdls_keys" ]; then echo ", authenticated with the keys of $(basename "$sdls_keys") (set sdls_key_file for $mission in groundstation.toml)"; fi).
  On the board:  systemctl status queqiao-flightsw@$mission ;  journalctl -u queqiao-flightsw@$mission -f
  Change links:  sudoedit /etc/queqiao/flightsw-$mission.env && sudo systemctl restart queqiao-flightsw@$mission
NEXT
