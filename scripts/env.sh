# Source this file (bash) to put the venv, the ROS 2 Jazzy wheels and the colcon install in the
# environment:   source scripts/env.sh
# Every node, test and CLI of the project runs in this environment.
_EMO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export EMOTION_ROBOT_ROOT="$_EMO_ROOT"
# shellcheck disable=SC1091
. "$_EMO_ROOT/.venv/bin/activate"
export AMENT_PREFIX_PATH="$_EMO_ROOT/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$_EMO_ROOT/.venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export ROS_LOG_DIR="${ROS_LOG_DIR:-$_EMO_ROOT/log/ros}"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
# Fast DDS with socket buffers and a shared-memory segment large enough for 640x480 images
# (the defaults lose about half of the frames on a busy machine; see the profile's comment).
export FASTRTPS_DEFAULT_PROFILES_FILE="${FASTRTPS_DEFAULT_PROFILES_FILE:-$_EMO_ROOT/src/emotion_perception/config/fastdds_large_images.xml}"
if [ -f "$_EMO_ROOT/install/setup.bash" ]; then
  # colcon's setup.bash reads variables that may be unset: source it with `set -u` off, then
  # restore the caller's setting (scripts that run under `set -u` can source this file)
  case $- in *u*) _EMO_NOUNSET=1; set +u ;; *) _EMO_NOUNSET= ;; esac
  # shellcheck disable=SC1091
  . "$_EMO_ROOT/install/setup.bash"
  if [ -n "$_EMO_NOUNSET" ]; then set -u; fi
  unset _EMO_NOUNSET
fi
unset _EMO_ROOT
