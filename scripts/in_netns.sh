#!/usr/bin/env bash
# Run a command in a private network namespace that holds only the loopback device, so that the
# DDS traffic of tests, demos and benchmarks cannot leave the machine. Where user namespaces are
# not available it runs the command as it is (DDS then stays on localhost only through
# ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, which scripts/env.sh sets).
if unshare -rn true 2>/dev/null; then
  exec unshare -rn bash -c 'ip link set lo up && exec "$@"' in_netns "$@"
fi
echo "[netns] note: cannot create a network namespace here; relying on" \
     "ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST" >&2
exec "$@"
