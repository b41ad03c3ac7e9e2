#!/usr/bin/env bash
# Write the Mosquitto password file for Queqiao's three MQTT users from environment variables.
#
# Usage:  QUEQIAO_MQTT_PASSWORD_FLIGHTSW=... QUEQIAO_MQTT_PASSWORD_GROUNDSTATION=... \
#         QUEQIAO_MQTT_PASSWORD_READER=... deploy/mosquitto/make-passwords.sh [PASSWORD_FILE]
#
# PASSWORD_FILE defaults to /etc/mosquitto/queqiao.passwd (password_file in mosquitto.conf).
# The file is replaced atomically, mode 0640, group mosquitto when that group exists.
# Passwords travel on mosquitto_passwd's standard input, never on a command line (ps).
# A user whose variable is unset or empty is an error: every role needs a password.
set -euo pipefail

out=${1:-/etc/mosquitto/queqiao.passwd}
passwd_tool=${MOSQUITTO_PASSWD:-$(command -v mosquitto_passwd || echo /usr/bin/mosquitto_passwd)}
if [ ! -x "$passwd_tool" ]; then
  echo "error: mosquitto_passwd not found; install it with: sudo apt-get install mosquitto" >&2
  exit 1
fi

declare -A users=(
  [flightsw]=QUEQIAO_MQTT_PASSWORD_FLIGHTSW
  [groundstation]=QUEQIAO_MQTT_PASSWORD_GROUNDSTATION
  [reader]=QUEQIAO_MQTT_PASSWORD_READER
)
missing=()
for user in flightsw groundstation reader; do
  var=${users[$user]}
  [ -n "${!var:-}" ] || missing+=("$var")
done
if ((${#missing[@]})); then
  echo "error: set a password for every MQTT user; missing or empty: ${missing[*]}" >&2
  exit 1
fi

dir=$(dirname -- "$out")
[ -d "$dir" ] || { echo "error: directory $dir does not exist" >&2; exit 1; }
tmp=$(mktemp "$dir/.queqiao.passwd.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
chmod 0600 "$tmp"

for user in flightsw groundstation reader; do
  var=${users[$user]}
  password=${!var}
  if [[ "$password" == *$'\n'* ]]; then
    echo "error: $var contains a newline" >&2
    exit 1
  fi
  # mosquitto_passwd asks twice ("Password:", "Reenter password:") and reads both from stdin.
  if ! printf '%s\n%s\n' "$password" "$password" | "$passwd_tool" "$tmp" "$user" >/dev/null; then
    echo "error: mosquitto_passwd failed for user $user" >&2
    exit 1
  fi
done

if getent group mosquitto >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  chgrp mosquitto "$tmp"
  chmod 0640 "$tmp"
fi
mv -f -- "$tmp" "$out"
trap - EXIT
echo "wrote $out (users: flightsw, groundstation, reader); reload the broker: sudo systemctl reload-or-restart mosquitto"
