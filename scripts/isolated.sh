#!/usr/bin/env bash
# Run a command of the project the safe way: set up what is missing (scripts/setup.sh), then run it
# in a private network namespace that holds only the loopback device, with the workspace sourced
# (scripts/env.sh) and ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, so that no DDS traffic leaves the
# machine. Used by `make test`, `make demo` and `make bench`:
#   bash scripts/isolated.sh python -m emotion_bringup.demo --seconds 10
# Where user namespaces are not available the command runs in the host's namespace (DDS then stays
# on localhost through the discovery range alone).
set -o pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ "${EMOTION_IN_NETNS:-0}" != 1 ]; then
  bash scripts/setup.sh || { echo "setup failed" >&2; exit 1; }
  export EMOTION_IN_NETNS=1
  if unshare -rn true 2>/dev/null; then
    exec unshare -rn bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
  fi
  echo "[isolated] note: cannot create a network namespace here; relying on" \
       "ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST" >&2
fi
# shellcheck disable=SC1091
source scripts/env.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-42}"
exec "$@"
