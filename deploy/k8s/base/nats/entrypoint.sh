#!/bin/sh
# NATS entrypoint: routes built from the replica count, as the NATS Helm chart renders them (one per
# StatefulSet pod, nats-<i>.nats-headless). NATS_REPLICAS is kept equal to spec.replicas by the
# overlays' replacement; with 1 there is no cluster block and JetStream runs standalone.
set -eu
conf=/etc/nats-config
run=/var/run/nats
cat "$conf/nats.conf" > "$run/nats.conf"
cat "$conf/auth.conf" > "$run/auth.conf"
replicas="${NATS_REPLICAS:-1}"
if [ "$replicas" -gt 1 ]; then
  case "${NATS_ROUTE_PASSWORD:-}" in
    "" | *[!A-Za-z0-9]*)
      echo "nats entrypoint: NATS_ROUTE_PASSWORD must be set (letters and digits only)" >&2
      exit 2
      ;;
  esac
  {
    echo "cluster {"
    echo "  name: argus"
    echo "  port: 6222"
    echo "  no_advertise: true"
    echo "  authorization { user: route, password: \$NATS_ROUTE_PASSWORD }"
    echo "  routes: ["
    i=0
    while [ "$i" -lt "$replicas" ]; do
      echo "    nats://route:${NATS_ROUTE_PASSWORD}@nats-$i.nats-headless:6222"
      i=$((i + 1))
    done
    echo "  ]"
    echo "}"
  } >> "$run/nats.conf"
fi
exec nats-server --config "$run/nats.conf"
