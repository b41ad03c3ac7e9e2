#!/usr/bin/env bash
# fresh-check: does `make test` pass on a freshly installed, minimal Debian?
#
#   sudo scripts/fresh-check.sh [DIST]        (or: sudo make fresh-check DIST=trixie)
#
# DIST is a Debian suite (default bookworm = Debian 12, Python 3.11; trixie = Debian 13,
# Python 3.13). Every run starts from nothing, as a new machine would:
#   1. debootstrap DIST from the Debian mirror apt uses on this machine into a new
#      temporary directory (the default variant: Debian's required and important
#      packages, what the installer leaves with no task selected);
#   2. inside it (chroot, with /proc, /dev, /dev/pts and /dev/shm mounted), apt-get
#      install python3 make git ca-certificates and nothing else;
#   3. a clean clone of this repository's committed HEAD (not the working tree), with
#      the shared data beside it as ../shared, exactly as the checkout expects it;
#   4. `make test` there, as root, with CI=true: every further install step (venv,
#      compiler, mosquitto, prometheus, ...) has to come from the project's own files.
# Nothing is cached between runs; the mounts are always unmounted and the root file
# system removed on exit (--keep keeps it for a look, still unmounted).
# Exit status: that of `make test` (0 = pass); 2 for a problem of this script itself.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dist=bookworm
keep=0
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; }
die() { echo "fresh-check: error: $*" >&2; exit 2; }
say() { echo "fresh-check: $*"; }
header() { printf '\n==================== fresh-check %s: %s ====================\n' "$dist" "$*"; }
now() { date +%s; }

while (($#)); do
  case "$1" in
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) dist=$1; shift ;;
  esac
done
[[ "$dist" =~ ^[a-z]+$ ]] || die "DIST '$dist': a Debian suite name such as bookworm or trixie"
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mounts): sudo $0 $dist"
commit=$(git -C "$repo" rev-parse --verify HEAD) || die "$repo is not a git checkout"
shared=$(cd "$repo/.." && pwd)/shared
[ -d "$shared" ] || shared=/work/shared
[ -d "$shared" ] || die "no shared data folder next to the checkout ($repo/../shared)"

t_start=$(now)
header "host tools"
if ! command -v debootstrap >/dev/null; then
  say "apt-get install debootstrap (on this machine)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
debian_mirror() {  # the first Debian archive URI apt uses here (not security/updates-only)
  local uri
  uri=$( { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } \
    | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' \
    | grep -v -e security -e nodesource -e google | head -n 1 || true)
  if [ -z "$uri" ]; then
    uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' /etc/apt/sources.list.d/*.sources 2>/dev/null \
      | grep -v -e security | grep -E '/debian/?$' | head -n 1 || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}
mirror=$(debian_mirror)

# ---------------------------------------------------------------------------- mounts (always undone)
root=$(mktemp -d /var/tmp/queqiao-fresh-check.XXXXXX)
chmod 0755 "$root"  # a root file system's / is world-readable (apt's _apt user, daemons that drop root)
mounts_under() { awk -v r="$1" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r; }
stop_processes() {  # anything still running inside the chroot was started by this run
  local pid
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$root" ] && kill -KILL "$pid" 2>/dev/null || true
  done
}
unmount_all() {
  local m
  for m in $(mounts_under "$root"); do umount "$m" 2>/dev/null || umount -l "$m" || true; done
}
cleanup() {
  local status=$?
  rm -f "$root.debootstrap.log"
  stop_processes
  unmount_all
  if [ -n "$(mounts_under "$root")" ]; then
    echo "fresh-check: error: still mounted, $root left in place: $(mounts_under "$root" | tr '\n' ' ')" >&2
    status=2
  elif ((keep)); then
    say "kept the root file system in $root (unmounted)"
  else
    rm -rf --one-file-system -- "$root"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_root() {  # a clean environment, as after logging in as root on the new machine
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive "$@"
}

# ---------------------------------------------------------------------------- 1. the root file system
header "debootstrap $dist from $mirror"
t0=$(now)
debootstrap "$dist" "$root" "$mirror" >"$root.debootstrap.log" 2>&1 \
  || { tail -n 30 "$root.debootstrap.log" >&2; rm -f "$root.debootstrap.log"; die "debootstrap $dist failed"; }
rm -f "$root.debootstrap.log"
t_debootstrap=$(($(now) - t0))
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"  # private: not the host's shared memory
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
say "$(. "$root/etc/os-release" && echo "$PRETTY_NAME") in ${t_debootstrap} s"

# ---------------------------------------------------------------------------- 2. the four packages
header "apt-get install python3 make git ca-certificates"
t0=$(now)
in_root apt-get update -qq
in_root apt-get install -y -qq --no-install-recommends python3 make git ca-certificates >/dev/null
# This sandbox reaches the package registries (PyPI over HTTPS) through a proxy with its
# own certificate authority, which a real fresh machine does not need. So the host's CA
# bundle goes in as a local CA (update-ca-certificates keeps it through later apt runs),
# and pip, which trusts only its own certifi copy, is pointed at the system bundle. No
# other pip setting of this machine (local wheel folders, extra indexes) is carried over:
# a fresh machine reaches PyPI directly.
cp -L /etc/ssl/certs/ca-certificates.crt "$root/usr/local/share/ca-certificates/fresh-check-host-bundle.crt"
in_root update-ca-certificates >/dev/null 2>&1
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$root/etc/pip.conf"
t_apt=$(($(now) - t0))
pyver=$(in_root python3 --version)
say "$pyver; ${t_apt} s"

# ---------------------------------------------------------------------------- 3. a clean clone
header "git clone ${commit:0:12} (committed HEAD)"
mkdir -p "$root/root/src"
git clone -q --no-hardlinks --no-checkout "$repo" "$root/root/src/queqiao"
git -C "$root/root/src/queqiao" -c advice.detachedHead=false checkout -q "$commit"
cp -a "$shared" "$root/root/src/shared"

# ---------------------------------------------------------------------------- 4. make test
header "make test (CI=true, as root, in the chroot)"
t0=$(now)
status=0
in_root CI=true bash -c 'cd /root/src/queqiao && make test' || status=$?
t_test=$(($(now) - t0))
t_total=$(($(now) - t_start))
if ((status == 0)); then result=PASS; else result="FAIL (make test exit $status)"; fi
header "result: $result"
echo "fresh-check $dist $result  ($(date -u +%Y-%m-%dT%H:%M:%SZ), commit ${commit:0:12})"
echo "  system:   $(. "$root/etc/os-release" && echo "$PRETTY_NAME"), $pyver, mirror $mirror"
echo "  timings:  debootstrap ${t_debootstrap} s, apt ${t_apt} s, make test ${t_test} s, total ${t_total} s"
exit "$status"
