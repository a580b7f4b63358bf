#!/usr/bin/env bash
# Put ROS 2 Jazzy and the built workspace in the environment, then run the given command.
set -e
if [ "$(id -u)" = 0 ]; then
  echo "entrypoint: running as root; the image's user is 'robot' (drop --user root)" >&2
fi
# shellcheck disable=SC1091
source /opt/ros/jazzy/setup.bash
# shellcheck disable=SC1091
source /ws/install/setup.bash
exec "$@"
