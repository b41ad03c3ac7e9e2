#!/usr/bin/env bash
# The one place that installs the Debian packages the tests need (real components and the
# tools that check the deploy/ files). As root, missing ones are installed; otherwise we
# stop with the command to run. Under CI=true the tests fail, never skip, on a missing one.
set -euo pipefail

# One line per command the tests run: the command, then the Debian package that has it.
# Adding a component is adding its line here.
COMPONENTS=(
  "mosquitto         mosquitto"    # the real MQTT broker
  "mosquitto_passwd  mosquitto"
  "prometheus        prometheus"   # real Prometheus scraping the daemon
  "promtool          prometheus"   # the alert rules' unit tests
  "systemd-analyze   systemd"      # `verify` on the unit files (needs no running systemd)
  "victoria-metrics  victoria-metrics"  # the full-resolution store remote write is tested against
  "/usr/lib/*/libfec.so  libfec-dev"    # the reference Reed-Solomon codec (a library: a path, not a command)
  "tmux              tmux"         # the 24-line terminal the watch test reads its screen from
  "nats-server       nats-server"  # JetStream, clustered, for the station network
)

found() {  # also where root's PATH would look when this runs as another user; a /path glob for a library
  [[ "$1" == /* ]] && { compgen -G "$1" >/dev/null; return; }
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ] || [ -x "/sbin/$1" ]
}
missing_packages() {
  local line cmd pkg
  for line in "${COMPONENTS[@]}"; do
    read -r cmd pkg _ <<<"$line"
    found "$cmd" || echo "$pkg"
  done | sort -u
}

mapfile -t missing < <(missing_packages)
((${#missing[@]} == 0)) && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages for the tests: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages' own services are not wanted: the tests start private instances on free ports.
  for svc in "${missing[@]}"; do
    [ "$svc" = systemd ] && continue
    (systemctl disable --now "$svc" >/dev/null 2>&1 || service "$svc" stop >/dev/null 2>&1 || true)
  done
  mapfile -t still < <(missing_packages)
  if ((${#still[@]})); then
    echo "error: installed, but the tests' commands are still missing from: ${still[*]}" >&2
    exit 1
  fi
  exit 0
fi
echo "error: the tests need these Debian packages: ${missing[*]} (real broker, real Prometheus, unit checks)." >&2
echo "       run as root, or: sudo apt-get install ${missing[*]}" >&2
exit 1
