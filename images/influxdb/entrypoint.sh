#!/bin/sh
# The InfluxDB image's start: on a volume never set up, and with DOCKER_INFLUXDB_INIT_MODE=setup, start
# influxd on the loopback only, run `influx setup` from DOCKER_INFLUXDB_INIT_* (org, bucket, admin user,
# password and token), run the scripts of /docker-entrypoint-initdb.d with the CLI logged in as the admin,
# stop it; then run influxd for real. The same interface as the public influxdb:2 image, which the InfluxDB
# component (components/influxdb.py) relies on.
set -eu

INIT_URL=http://127.0.0.1:18086

setup() {
  influxd --http-bind-address 127.0.0.1:18086 &
  pid=$!
  tries=0
  until influx ping --host "$INIT_URL" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 120 ] || ! kill -0 "$pid" 2>/dev/null; then
      echo "dtpoc-influxdb: influxd did not start for the set-up" >&2
      return 1
    fi
    sleep 0.5
  done
  influx setup --force --host "$INIT_URL" \
    --username "$DOCKER_INFLUXDB_INIT_USERNAME" --password "$DOCKER_INFLUXDB_INIT_PASSWORD" \
    --org "$DOCKER_INFLUXDB_INIT_ORG" --bucket "$DOCKER_INFLUXDB_INIT_BUCKET" \
    --token "$DOCKER_INFLUXDB_INIT_ADMIN_TOKEN" ${DOCKER_INFLUXDB_INIT_RETENTION:+--retention "$DOCKER_INFLUXDB_INIT_RETENTION"}
  for script in /docker-entrypoint-initdb.d/*.sh; do
    [ -e "$script" ] || continue
    echo "dtpoc-influxdb: running $script"
    INFLUX_HOST="$INIT_URL" "$script"
  done
  # The CLI's saved login points at the real port from now on (for `kubectl exec ... influx`).
  influx config set --config-name default --host-url http://127.0.0.1:8086 >/dev/null
  kill "$pid"
  wait "$pid" || true
}

if [ "${DOCKER_INFLUXDB_INIT_MODE:-}" = setup ] && [ ! -f "$INFLUXD_BOLT_PATH" ]; then
  if ! setup; then
    # Half a set-up must not pass for a finished one on the next start: leave the volume as it was.
    kill "${pid:-0}" 2>/dev/null || true
    rm -rf "$INFLUXD_BOLT_PATH" "$INFLUXD_ENGINE_PATH" "${INFLUX_CONFIGS_PATH:?}"
    exit 1
  fi
fi
exec influxd "$@"
