#!/usr/bin/env bash
# bench/floor.sh IMAGE — the bare-operations floor: the least a rolling
# deploy must do, host after host, with plain tools on the lab directly (no
# SSH, no checks, no waiting for in-flight requests): docker pull, LB edit
# and reload (drain), docker stop + rm, docker run, poll health until the
# first 200, LB edit and reload (restore). Prints one JSON line per host
# and a final one with the totals. Used by `make bench` as the yardstick.
set -euo pipefail
IMAGE=$1
LAB_STATE=${LAB_STATE:-/tmp/gantry-lab}
CONFIG=${CONFIG:-$(dirname "$0")/../lab/gantry.yml}
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a-b}'; }
add() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a+b}'; }
# Hosts and load balancers as the lab config lists them.
mapfile -t HOSTS < <(awk '/- name: host/{n=$3} /address: 127.0.2/{print n" "$2}' "$CONFIG")
mapfile -t LBS < <(awk '/- name: lb/{print $3}' "$CONFIG")
reload_all() { # $1: sed expression applied to every LB's www upstream file
  for lb in "${LBS[@]}"; do
    d=$LAB_STATE/$lb
    sed -i "$1" "$d/upstreams/www.conf"
    nginx -s reload -p "$d/" -c "$d/nginx.conf" 2>/dev/null
  done
}
start_all=$(now)
pull_total=0
for entry in "${HOSTS[@]}"; do
  read -r name addr <<<"$entry"
  D="docker -H unix://$LAB_STATE/$name/docker.sock"
  t0=$(now)
  $D pull -q "$IMAGE" >/dev/null
  t1=$(now)
  reload_all "s|^server $addr:8080;|server $addr:8080 down;|"
  $D stop -t 10 www >/dev/null 2>&1 || true
  $D rm -f www >/dev/null 2>&1 || true
  $D run -d --network host --name www --restart unless-stopped \
    -e LISTEN="$addr:8080" -e HOST_NAME="$name" "$IMAGE" >/dev/null
  until curl -fs -o /dev/null --max-time 1 "http://$addr:8080/healthz"; do sleep 0.02; done
  reload_all "s|^server $addr:8080 down;|server $addr:8080;|"
  t2=$(now)
  pull=$(sub "$t1" "$t0"); swap=$(sub "$t2" "$t1")
  pull_total=$(add "$pull_total" "$pull")
  echo "{\"host\":\"$name\",\"pull_s\":$pull,\"swap_s\":$swap}"
done
echo "{\"total_s\":$(sub "$(now)" "$start_all"),\"pull_total_s\":$pull_total}"
