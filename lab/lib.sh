# lab/lib.sh — shared helpers for lab/up, lab/down and lab/publish.
# Sourced, not executed. Everything the lab starts is tracked by a pid file
# under $LAB_STATE; nothing is ever stopped by name.

# Daemons started from here must not inherit a caller's descriptors: a
# lock file held by `flock FILE lab/up` would stay locked for as long as
# the registry or a dockerd runs.
exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-

LAB_STATE=${LAB_STATE:-/tmp/gantry-lab}
LAB_HOSTS=${LAB_HOSTS:-4}
# Environment `lab` (service www, lab/gantry.yml) is the first 4 hosts
# whatever LAB_HOSTS is; environment `big` (service big on port 9080,
# lab/gantry-big.yml) is every host: the large-fleet tests use it.
LAB_WWW_HOSTS=$(( LAB_HOSTS < 4 ? LAB_HOSTS : 4 ))
LAB_LBS=2
LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$LAB_DIR/.." && pwd)
KEYS=$LAB_STATE/keys
REGISTRY_ADDR=127.0.0.1:5000

case $LAB_STATE in
  /*) ;;
  *) echo "LAB_STATE must be an absolute path (got '$LAB_STATE')" >&2; exit 1 ;;
esac
LAB_STATE=${LAB_STATE%/}
if [ -z "$LAB_STATE" ] || [ "$LAB_STATE" = / ]; then
  echo "LAB_STATE must not be /" >&2; exit 1
fi
if [ ${#LAB_STATE} -gt 40 ]; then
  echo "LAB_STATE '$LAB_STATE' is too long: unix socket paths under it must stay < 100 chars" >&2; exit 1
fi

log() { printf '[lab] %s\n' "$*" >&2; }
die() { printf '[lab] ERROR: %s\n' "$*" >&2; exit 1; }

host_addr() { echo "127.0.2.$1"; }
# The bastion (jump host) is one more sshd; a config may reach the fleet through it.
BASTION_ADDR=127.0.4.1
# The stand-in EC2 API (lab/gantry-ec2.yml discovers the hosts through it).
EC2_ADDR=127.0.0.1:4566
lb_addr() { echo "127.0.3.$1"; }
lb_port() { echo "800$1"; }
# Frontend of service big on load balancer j.
big_port() { echo "810$1"; }

# pid_of FILE: prints the pid stored in FILE, or nothing. (Builtins only:
# forks are slow on the lab machines, and lab/up checks many pid files.)
pid_of() {
  local p=
  [ -s "$1" ] && read -r p <"$1" 2>/dev/null || true
  [[ $p =~ ^[0-9]+$ ]] && echo "$p"
  return 0
}

# alive PIDFILE MARKER: true when the pid in PIDFILE runs and its command
# line mentions MARKER (protects against a recycled pid).
alive() {
  local p= args=()
  [ -s "$1" ] && read -r p <"$1" 2>/dev/null || true
  [[ $p =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$p/cmdline" ] || return 1
  mapfile -d '' args <"/proc/$p/cmdline" 2>/dev/null || return 1
  [[ " ${args[*]} " == *"$2"* ]]
}

# wait_for SECONDS WHAT LOGFILE CMD...: retry CMD until it succeeds.
wait_for() {
  local secs=$1 what=$2 logf=$3; shift 3
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      log "$what did not come up within ${secs}s; last lines of $logf:"
      tail -n 20 "$logf" >&2 2>/dev/null || true
      die "$what did not come up (log: $logf)"
    fi
    sleep 0.2
  done
}

docker_ok() { docker -H "unix://$1" version >/dev/null 2>&1; }

ssh_ok() {
  ssh -F /dev/null -i "$KEYS/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o UserKnownHostsFile="$KEYS/known_hosts" -o StrictHostKeyChecking=yes \
    -o ConnectTimeout=3 -p 2222 "root@$1" true
}

http_answers() { # any HTTP status at all
  local code
  code=$(curl -s -o /dev/null -m 3 -w '%{http_code}' "$1" || true)
  [ -n "$code" ] && [ "$code" != 000 ]
}

registry_ok() { curl -sf -m 3 -o /dev/null "http://$REGISTRY_ADDR/v2/"; }
