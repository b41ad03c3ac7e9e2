#!/usr/bin/env bash
# The real components the tests run: Debian's mosquitto, prometheus (with promtool) and nats-server,
# and libfec (libfec-dev), the reference Reed-Solomon codec the RS tests compare against.
# As root, missing ones are installed; otherwise we stop with the command to run.
set -euo pipefail
missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
compgen -G '/usr/lib/*/libfec.so' >/dev/null || compgen -G '/usr/lib/libfec.so' >/dev/null || missing+=(libfec-dev)
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages for the real-component tests: ${missing[*]}"
  apt-get update -qq
  # The packages' own services are not wanted: the tests start private instances on free ports.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  for svc in mosquitto prometheus nats-server; do
    (systemctl disable --now "$svc" >/dev/null 2>&1 || service "$svc" stop >/dev/null 2>&1 || true)
  done
  exit 0
fi
echo "error: the tests need Debian's ${missing[*]} (real broker / real Prometheus / reference RS codec)." >&2
echo "       run as root, or: sudo apt-get install ${missing[*]}" >&2
exit 1
