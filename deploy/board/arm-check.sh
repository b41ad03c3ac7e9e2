#!/usr/bin/env bash
# arm-check: does the board install work on arm64, and do the frames an arm64 emulator
# produces decode on this (x86-64) ground station?  Without a board: an arm64 Debian
# bookworm root filesystem run under qemu user emulation.
#
#   sudo deploy/board/arm-check.sh            (or: sudo make arm-check)
#
# Steps:
#   1. host tools: qemu-user-static, binfmt-support, debootstrap (installed with apt if
#      missing); binfmt_misc mounted and the qemu-aarch64 handler enabled
#   2. rootfs: debootstrap --foreign --arch=arm64 bookworm from the Debian mirror apt uses
#      here, second stage inside the chroot, then python3, python3-venv, python3-dev, gcc.
#      Cached in /var/cache/queqiao-arm-check (--cache), outside the repository: a warm
#      run reuses it (--fresh rebuilds it)
#   3. the board install, as on a board: deploy/board/install.sh builds the sdist, and
#      deploy/board/board-setup.sh installs it into /opt/queqiao/venv inside the rootfs
#      (pip compiles the Cython kernels for aarch64 there); pip trusts the host's CA
#      bundle and uses the host's pip configuration and PIP_* settings
#   4. inside the rootfs: uname -m, the kernel backend and a kernel self-check (compiled
#      vs pure-Python CRC), then `flightsw run --mission M --downlink file://... --duration 5`
#      for each mission (--mission, repeatable; default: zhurong and haiyang2d, the latter
#      for frames with an FECF)
#   5. on the host: `groundstation inspect CAPTURE --format cadu --json` (this checkout's
#      .venv) must find frames (no bad FECF; at least one good FECF where the mission has
#      one) and packets (no bad packet CRC)
# When this checkout's flightsw has no `run` command yet, steps 4-5 shrink to
# `flightsw --version` and the kernel self-check, and the result says PARTIAL
# (--strict: exit 3 then).  A summary with timings is printed and kept in CACHE/last-run.txt.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=/var/cache/queqiao-arm-check
suite=bookworm
missions=()
duration=5
fresh=0
strict=0
ref=""

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; cat <<USAGE
Options:
  --cache DIR      where the rootfs is kept (default: $cache)
  --mission NAME   spacecraft to emulate (repeatable; default: zhurong, haiyang2d)
  --duration S     seconds of emulation per mission (default: $duration)
  --ref GIT-REF    install a committed revision instead of the working tree
  --fresh          rebuild the rootfs from scratch
  --strict         exit 3 when only a partial check was possible
USAGE
}
die() { echo "arm-check: error: $*" >&2; exit 1; }
say() { echo "arm-check: $*"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", b - a }'; }

while (($#)); do
  case "$1" in
    --cache) cache=${2:?}; shift 2 ;;
    --mission) missions+=("${2:?}"); shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --ref) ref=${2:?}; shift 2 ;;
    --fresh) fresh=1; shift ;;
    --strict) strict=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
((${#missions[@]})) || missions=(zhurong haiyang2d)
[[ "$duration" =~ ^[0-9]+$ ]] || die "--duration takes whole seconds"
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mounts): sudo $0 $*"
case "$(realpath -m "$cache")/" in "$repo"/*) die "--cache must be outside the repository ($repo)";; esac
[ -x "$repo/.venv/bin/groundstation" ] || die "no $repo/.venv: run 'make venv' first (the host side decodes with it)"

if [ -n "$ref" ]; then
  commit=$(git -C "$repo" rev-parse --verify "$ref^{commit}") || die "--ref $ref is not a commit of $repo"
  source_desc="commit ${commit:0:12} (--ref $ref)"
  ref=$commit
else
  source_desc="working tree at $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
fi

t_start=$(now)
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock -n 9 || die "another arm-check is using $cache"
rootfs="$cache/$suite-arm64"
work=$(mktemp -d)
summary="$work/summary.txt"

# ---------------------------------------------------------------------------- mounts (and safe cleanup)
mounts_under() { awk -v r="$1" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r; }
unmount_all() {
  local root=$1 m
  for m in $(mounts_under "$root"); do umount "$m" 2>/dev/null || umount -l "$m" || true; done
}
safe_rm_rootfs() {
  local root=$1
  [ -d "$root" ] || return 0
  unmount_all "$root"
  [ -z "$(mounts_under "$root")" ] || die "$root still has mounts; not deleting it: $(mounts_under "$root" | tr '\n' ' ')"
  rm -rf --one-file-system -- "$root"
}
mount_chroot() {
  local root=$1
  unmount_all "$root"
  mount -t proc proc "$root/proc"
  mount --bind /dev "$root/dev"
  mkdir -p "$root/dev/pts"
  mountpoint -q "$root/dev/pts" || mount --bind /dev/pts "$root/dev/pts" 2>/dev/null || true
  mount -t sysfs sysfs "$root/sys" 2>/dev/null || true
  cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  [ -f /etc/hosts ] && cp -L /etc/hosts "$root/etc/hosts"
}
cleanup() {
  local status=$?
  [ -d "$rootfs" ] && unmount_all "$rootfs"
  [ -d "$rootfs.partial" ] && unmount_all "$rootfs.partial"
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT

# ---------------------------------------------------------------------------- 1. host tools + binfmt
t0=$(now)
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
[ -x /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)
command -v update-binfmts >/dev/null || need+=(binfmt-support)
if ((${#need[@]})); then
  say "installing host packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || die "apt-get install ${need[*]} failed"
fi
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc (a container without privileges?)"
fi
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null \
  || die "the qemu-aarch64 binfmt handler is not enabled (update-binfmts --display qemu-aarch64)"
t_tools=$(secs "$t0" "$(now)")

# ---------------------------------------------------------------------------- 2. the rootfs
debian_mirror() {  # the first Debian archive URI apt uses here (not security/updates-only)
  local uri
  uri=$( { cat /etc/apt/sources.list 2>/dev/null; cat /etc/apt/sources.list.d/*.list 2>/dev/null; } \
    | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' \
    | grep -v -e security -e nodesource -e google | head -n 1 || true)
  if [ -z "$uri" ]; then
    uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' /etc/apt/sources.list.d/*.sources 2>/dev/null \
      | grep -v -e security -e nodesource -e google | grep -E '/debian/?$' | head -n 1 || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}
mirror=$(debian_mirror)
# ccache: only for this check (a board compiles once); it turns the ~4 min compile of the
# kernels under qemu into seconds on warm runs.
rootfs_pkgs=(python3 python3-venv python3-pip python3-dev gcc libc6-dev ca-certificates ccache)
chroot_run() {  # chroot_run ROOT CMD...: a clean environment, plus the host's pip/proxy settings
  local root=$1; shift
  local envs=(PATH=/usr/lib/ccache:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
              LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive
              CCACHE_DIR=/var/cache/ccache CCACHE_NOHASHDIR=1)
  local v
  while IFS= read -r v; do envs+=("$v"); done < <(env | grep -E '^(PIP_[A-Z_]+|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY)=' || true)
  if [ -f "$root/etc/queqiao-arm-check/host-ca.pem" ]; then
    envs+=(PIP_CERT=/etc/queqiao-arm-check/host-ca.pem SSL_CERT_FILE=/etc/queqiao-arm-check/host-ca.pem
           REQUESTS_CA_BUNDLE=/etc/queqiao-arm-check/host-ca.pem)
  fi
  chroot "$root" /usr/bin/env -i "${envs[@]}" "$@"
}
host_trust() {  # the host's CA bundle and pip configuration, into the rootfs
  local root=$1 bundle
  mkdir -p "$root/etc/queqiao-arm-check"
  for bundle in "${PIP_CERT:-}" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
    if [ -n "$bundle" ] && [ -f "$bundle" ]; then cp -L "$bundle" "$root/etc/queqiao-arm-check/host-ca.pem"; break; fi
  done
  # apt over https (if the mirror is https) trusts the same bundle.
  [ -f "$root/etc/queqiao-arm-check/host-ca.pem" ] && mkdir -p "$root/etc/apt/apt.conf.d" \
    && echo 'Acquire::https::CaInfo "/etc/queqiao-arm-check/host-ca.pem";' >"$root/etc/apt/apt.conf.d/99queqiao-host-ca"
  [ -f /etc/pip.conf ] && cp -L /etc/pip.conf "$root/etc/pip.conf"
  [ -f /etc/xdg/pip/pip.conf ] && mkdir -p "$root/etc/xdg/pip" && cp -L /etc/xdg/pip/pip.conf "$root/etc/xdg/pip/pip.conf"
  for f in "$HOME/.config/pip/pip.conf" "$HOME/.pip/pip.conf"; do
    [ -f "$f" ] && mkdir -p "$root/root/.config/pip" && cp -L "$f" "$root/root/.config/pip/pip.conf"
  done
  return 0
}

t0=$(now)
((fresh)) && { say "--fresh: removing $rootfs"; safe_rm_rootfs "$rootfs"; }
if [ -f "$rootfs/.queqiao-ready" ]; then
  rootfs_state=warm
  say "reusing the cached rootfs $rootfs"
else
  rootfs_state=cold
  partial="$rootfs.partial"
  safe_rm_rootfs "$partial"
  say "building an arm64 $suite rootfs from $mirror (a few minutes)"
  debootstrap --foreign --arch=arm64 --variant=minbase "$suite" "$partial" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap (first stage) failed"; }
  cp /usr/bin/qemu-aarch64-static "$partial/usr/bin/"
  chroot "$partial" /debootstrap/debootstrap --second-stage >"$work/debootstrap2.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap2.log" >&2; unmount_all "$partial"; die "debootstrap (second stage, under qemu) failed"; }
  unmount_all "$partial"
  echo "deb $mirror $suite main" >"$partial/etc/apt/sources.list"
  host_trust "$partial"
  mount_chroot "$partial"
  say "apt-get install ${rootfs_pkgs[*]} (in the rootfs)"
  { chroot_run "$partial" apt-get update -qq && chroot_run "$partial" apt-get install -y -qq --no-install-recommends "${rootfs_pkgs[@]}"; } \
    >"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log" >&2; die "apt-get in the rootfs failed"; }
  chroot_run "$partial" apt-get clean
  unmount_all "$partial"
  touch "$partial/.queqiao-ready"
  mv "$partial" "$rootfs"
fi
t_rootfs=$(secs "$t0" "$(now)")
host_trust "$rootfs"
mount_chroot "$rootfs"
if [ "$rootfs_state" = warm ]; then  # a rootfs cached by an older version of this script
  missing=()
  for p in "${rootfs_pkgs[@]}"; do
    chroot_run "$rootfs" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    say "adding ${missing[*]} to the cached rootfs"
    { chroot_run "$rootfs" apt-get update -qq && chroot_run "$rootfs" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
      >"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log" >&2; die "apt-get in the rootfs failed"; }
  fi
fi
arch=$(chroot_run "$rootfs" uname -m)
[ "$arch" = aarch64 ] || die "the rootfs runs as '$arch', not aarch64"
os=$(. "$rootfs/etc/os-release" && echo "$PRETTY_NAME")
pyver=$(chroot_run "$rootfs" python3 --version)
say "rootfs ($rootfs_state): $os, $arch, $pyver"

# ---------------------------------------------------------------------------- 3. the board install
t0=$(now)
sdist=$(PYTHON=${PYTHON:-python3} "$repo/deploy/board/install.sh" --sdist-only "$work/dist" ${ref:+--ref "$ref"})
t_sdist=$(secs "$t0" "$(now)")
inst=/var/tmp/queqiao-install
rm -rf "$rootfs$inst"
mkdir -p "$rootfs$inst"
cp "$sdist" "$repo/deploy/board/board-setup.sh" "$repo/deploy/systemd/queqiao-flightsw@.service" \
   "$repo/deploy/systemd/flightsw.env.example" "$rootfs$inst/"
say "board-setup.sh inside the rootfs: pip install $(basename "$sdist") (compiles the kernels under qemu)"
t0=$(now)
if ! chroot_run "$rootfs" bash "$inst/board-setup.sh" --sdist "$inst/$(basename "$sdist")" --mission "${missions[0]}" \
     --downlink "file:///var/tmp/arm-check-${missions[0]}.cadu" --uplink "" --no-systemd 2>&1 | sed -u 's/^/  | /'; then
  die "board-setup.sh failed inside the rootfs (output above)"
fi
t_install=$(secs "$t0" "$(now)")
venv=/opt/queqiao/venv
version=$(chroot_run "$rootfs" "$venv/bin/flightsw" --version)

# Kernels: which backend, and the compiled ones agree with their pure-Python twins.
selfcheck=$(chroot_run "$rootfs" "$venv/bin/python" -I -W always - <<'PY' 2>&1
import random
import cython_ext
from cython_ext import compiled, twin
print("backend", cython_ext.BACKEND, " ".join(f"{k}={cython_ext.backend_of(k)}" for k in cython_ext.KERNELS))
assert cython_ext.crc.crc16(b"123456789") == 0x29B1, "CRC-16/CCITT-FALSE known answer"
fast, slow = compiled("crc"), twin("crc")
if fast is not None:
    rng = random.Random(1)
    for _ in range(200):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        assert fast.crc16(data) == slow.crc16(data), data.hex()
    print("crc compiled == pure on 200 random inputs")
print("selfcheck ok")
PY
) || die "kernel self-check failed inside the rootfs:
$selfcheck"
backend=$(awk '$1 == "backend" { print $2 }' <<<"$selfcheck")
say "$version; $(grep -m1 '^backend' <<<"$selfcheck")"

# ---------------------------------------------------------------------------- 4-5. emulate there, decode here
profile_args() {  # inspect options from the mission database (frame length, AOS/TM, FECF, OCF)
  "$repo/.venv/bin/python" - "$1" <<'PY' 2>/dev/null || true
import sys
from protocols.missions import get_spacecraft
p = get_spacecraft(sys.argv[1]).profile
args = ["--frame-length", str(p.frame_length), "--frame-type", p.frame_type.name.lower()]
if not p.fecf:
    args.append("--no-fecf")
if p.ocf and p.frame_type.name.lower() == "aos":
    args.append("--ocf")
if not p.randomizer:
    args.append("--no-derandomize")
print(" ".join(args))
PY
}
verdict=PASS
run_results=()
t_runs=0
if chroot_run "$rootfs" "$venv/bin/flightsw" run --help >/dev/null 2>&1; then
  for m in "${missions[@]}"; do
    capture=/var/tmp/arm-check-$m.cadu
    rm -f "$rootfs$capture"
    say "flightsw run --mission $m --duration $duration (aarch64, under qemu)"
    t0=$(now)
    if ! chroot_run "$rootfs" timeout --kill-after=10 $((duration * 10 + 120)) "$venv/bin/flightsw" run \
         --mission "$m" --downlink "file://$capture" --duration "$duration" >"$work/run-$m.log" 2>&1; then
      tail -n 30 "$work/run-$m.log" >&2
      die "flightsw run --mission $m failed inside the rootfs"
    fi
    t_run=$(secs "$t0" "$(now)")
    t_runs=$((t_runs + t_run))
    [ -s "$rootfs$capture" ] || die "flightsw run --mission $m wrote nothing to $capture"
    cp "$rootfs$capture" "$work/$m.cadu"
    read -r -a pargs <<<"$(profile_args "$m")"
    status=0
    "$repo/.venv/bin/groundstation" inspect "$work/$m.cadu" --format cadu --json ${pargs[@]+"${pargs[@]}"} \
      >"$work/$m.jsonl" 2>"$work/$m.inspect.err" || status=$?
    ((status < 2)) || { cat "$work/$m.inspect.err" >&2; die "groundstation inspect could not read the capture of $m"; }
    result=$("$repo/.venv/bin/python" - "$work/$m.jsonl" "$m" "${pargs[*]-}" <<'PY'
import json, sys
path, mission, pargs = sys.argv[1], sys.argv[2], sys.argv[3]
recs = [json.loads(line) for line in open(path) if line.strip()]
frames = [r for r in recs if r["kind"] == "frame"]
packets = [r for r in recs if r["kind"] == "packet" and not r.get("idle")]
errors = [r for r in recs if r["kind"] == "error"]
fecf = "--no-fecf" not in pargs.split()
problems = []
if not frames:
    problems.append("no frames")
if any(f["crc_ok"] is False for f in frames):
    problems.append(f"{sum(f['crc_ok'] is False for f in frames)} frames with a bad FECF")
if fecf and not any(f["crc_ok"] is True for f in frames):
    problems.append("no frame with a good FECF")
if not packets:
    problems.append("no packets")
if any(p.get("crc_ok") is False for p in packets):
    problems.append(f"{sum(p.get('crc_ok') is False for p in packets)} packets with a bad CRC")
good = sum(f["crc_ok"] is True for f in frames)
crc_packets = sum(p.get("crc_ok") is True for p in packets)
named = sorted({p["packet"] for p in packets if "packet" in p})
print(("FAIL: " + "; ".join(problems) + " | ") if problems else "ok | ", end="")
print(f"{len(frames)} frames ({good} FECF ok{'' if fecf else ', mission has no FECF'}), {len(packets)} packets "
      f"({crc_packets} CRC ok), {len(errors)} errors; packets: {', '.join(named[:6]) or 'unnamed'}")
PY
)
    say "$m: $result"
    run_results+=("$m: $result (emulated ${duration} s in ${t_run} s)")
    [[ "$result" == ok* ]] || verdict=FAIL
  done
else
  verdict=PARTIAL
  run_results+=("flightsw has no 'run' command in this checkout: verified the install, 'flightsw --version' and the kernel self-check only")
  say "PARTIAL: ${run_results[-1]}"
fi

# ---------------------------------------------------------------------------- summary
t_total=$(secs "$t_start" "$(now)")
{
  echo "arm-check $verdict  ($(date -u +%Y-%m-%dT%H:%M:%SZ), host $(uname -m), $source_desc)"
  echo "  rootfs:     $rootfs_state, $os, uname -m in the chroot: $arch, $pyver, mirror $mirror"
  echo "  installed:  $version, kernels: $backend ($(grep -m1 '^backend' <<<"$selfcheck" | cut -d' ' -f3-))"
  echo "  self-check: CRC-16 known answer ok$(grep -q 'compiled == pure' <<<"$selfcheck" && echo '; compiled CRC == pure-Python twin on 200 random inputs')"
  for r in "${run_results[@]}"; do echo "  run:        $r"; done
  echo "  timings:    host tools ${t_tools} s, rootfs ${t_rootfs} s ($rootfs_state), sdist ${t_sdist} s, install ${t_install} s, emulator runs ${t_runs} s, total ${t_total} s"
} | tee "$summary"
cp "$summary" "$cache/last-run.txt"
case $verdict in
  PASS) exit 0 ;;
  PARTIAL) ((strict)) && exit 3; exit 0 ;;
  *) exit 1 ;;
esac
