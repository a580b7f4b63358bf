#!/usr/bin/env bash
# Every benchmark, one table (bench/run_all.py), in a loopback-only network namespace.
set -o pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ "${EMOTION_IN_NETNS:-0}" != 1 ]; then
  bash scripts/setup.sh || { echo "setup failed" >&2; exit 1; }
  EMOTION_IN_NETNS=1 exec bash scripts/in_netns.sh bash "$0" "$@"
fi
# shellcheck disable=SC1091
source scripts/env.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-23}"
exec python bench/run_all.py "$@"
