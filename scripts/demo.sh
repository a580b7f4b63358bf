#!/usr/bin/env bash
# The main job: set up if needed, then run the whole robot on a generated clip with a simulated
# Arduino (python -m emotion_bringup.demo --help for options), in a network namespace that holds
# only the loopback device so that no DDS traffic leaves the machine.
set -o pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ "${EMOTION_IN_NETNS:-0}" != 1 ]; then
  bash scripts/setup.sh || { echo "setup failed" >&2; exit 1; }
  EMOTION_IN_NETNS=1 exec bash scripts/in_netns.sh bash "$0" "$@"
fi
# shellcheck disable=SC1091
source scripts/env.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-17}"
exec python -m emotion_bringup.demo "$@"
