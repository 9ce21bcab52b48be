#!/usr/bin/env bash
# bench/floor.sh IMAGE — the bare-operations floor: the least a rolling
# deploy must do, with plain tools on the lab directly (no SSH, no checks):
# docker pull on every host at once (as gantry pulls), then host after host:
# LB edit and reload (drain), docker stop + rm, docker run, poll health
# until the first 200, LB edit and reload (restore). A host's swap_s runs
# from its drain's taking effect (every LB's new workers run) to its
# restore's, as gantry counts its time out of rotation. Prints one JSON line
# per host and a final one with the totals. Used by `make bench` as the
# yardstick.
#
# FAIR=1 adds the waits gantry makes on purpose, so that the ratio compares
# equal work: after the drain's reload it waits until nginx's old workers
# (the requests in flight) are gone, and the health check needs PASSES
# consecutive passes INTERVAL seconds apart, as the service's config says.
set -euo pipefail
IMAGE=$1
LAB_STATE=${LAB_STATE:-/tmp/gantry-lab}
CONFIG=${CONFIG:-$(dirname "$0")/../lab/gantry.yml}
FAIR=${FAIR:-0}
PASSES=${PASSES:-1}
INTERVAL=${INTERVAL:-0}
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a-b}'; }
# Hosts and load balancers as the lab config lists them (environment lab).
mapfile -t HOSTS < <(awk '/- name: host/{n=$3} /address: 127.0.2/{print n" "$2}' "$CONFIG" | head -n "${FLOOR_HOSTS:-4}")
mapfile -t LBS < <(awk '/- name: lb/{print $3}' "$CONFIG")
# old_workers prints the worker pids of every LB's nginx master.
old_workers() {
  for lb in "${LBS[@]}"; do
    pgrep -P "$(cat "$LAB_STATE/$lb/nginx.pid")" || true
  done
}
reload_all() { # $1: sed expression applied to every LB's www upstream file
  for lb in "${LBS[@]}"; do
    d=$LAB_STATE/$lb
    sed -i "$1" "$d/upstreams/www.conf"
    nginx -s reload -p "$d/" -c "$d/nginx.conf" 2>/dev/null
  done
}
# took_effect OLD: waits until every LB's master runs a worker not in OLD:
# the reload took effect (nginx -s reload returns before that). A host is
# out of rotation from the drain's taking effect to the restore's, as
# gantry counts it.
took_effect() {
  for lb in "${LBS[@]}"; do
    m=$(cat "$LAB_STATE/$lb/nginx.pid")
    until pgrep -P "$m" | grep -qvxF -f <(printf '%s\n' $1); do sleep 0.005; done
  done
}
healthy() { curl -fs -o /dev/null --max-time 1 "http://$1:8080/healthz"; }
start_all=$(now)
# Pull everywhere at once, as gantry does.
t0=$(now)
for entry in "${HOSTS[@]}"; do
  read -r name _ <<<"$entry"
  docker -H "unix://$LAB_STATE/$name/docker.sock" pull -q "$IMAGE" >/dev/null &
done
wait
pull_total=$(sub "$(now)" "$t0")
for entry in "${HOSTS[@]}"; do
  read -r name addr <<<"$entry"
  D="docker -H unix://$LAB_STATE/$name/docker.sock"
  old=$(old_workers)
  reload_all "s|^server $addr:8080;|server $addr:8080 down;|"
  took_effect "$old"
  t1=$(now)
  if [ "$FAIR" = 1 ]; then # the requests in flight finish on the old workers
    for p in $old; do while kill -0 "$p" 2>/dev/null; do sleep 0.01; done; done
  fi
  $D stop -t 10 www >/dev/null 2>&1 || true
  $D rm -f www >/dev/null 2>&1 || true
  $D run -d --network host --name www --restart unless-stopped \
    -e LISTEN="$addr:8080" -e HOST_NAME="$name" "$IMAGE" >/dev/null
  until healthy "$addr"; do sleep 0.01; done
  if [ "$FAIR" = 1 ]; then # the configured passes, INTERVAL apart
    for _ in $(seq 2 "$PASSES"); do sleep "$INTERVAL"; until healthy "$addr"; do sleep 0.01; done; done
  fi
  before=$(old_workers)
  reload_all "s|^server $addr:8080 down;|server $addr:8080;|"
  took_effect "$before"
  t2=$(now)
  echo "{\"host\":\"$name\",\"pull_s\":0,\"swap_s\":$(sub "$t2" "$t1")}"
done
echo "{\"total_s\":$(sub "$(now)" "$start_all"),\"pull_total_s\":$pull_total}"
