#!/usr/bin/env bash
# The whole test suite, from a fresh clone: sets up what is missing, then runs
#   colcon test (every ROS package) + colcon test-result, the training tests, the lint (ruff and
#   package.xml checks, tests/) and the firmware tests,
# inside a network namespace that holds only the loopback device (so no DDS traffic leaves the
# machine), and ends with one line: "N passed, N failed, N skipped".
set -o pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ "${EMOTION_IN_NETNS:-0}" != 1 ]; then
  exec bash scripts/isolated.sh bash "$0" "$@"
fi
export ROS_LOG_DIR="$ROOT/log/ros"
export PYTHONDONTWRITEBYTECODE=1
RESULTS="$ROOT/build/test_results_extra"
rm -rf "$RESULTS"; mkdir -p "$RESULTS"
status=0

echo "[test] network devices: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
echo "[test] colcon test (all packages)"
# setup.sh skips src/hri_msgs where an installed hri_msgs is used (ROS4HRI from apt, an underlay):
# a package it did not build has nothing to test
SKIP_ARGS=()
[ -f build/hri_msgs/CMakeCache.txt ] || SKIP_ARGS=(--packages-skip hri_msgs)
colcon --log-base log test --executor sequential --event-handlers console_direct- \
  --return-code-on-test-failure "${SKIP_ARGS[@]}" || status=1

if [ -d training/tests ]; then
  echo "[test] training tests"
  python -m pytest training/tests -q -p no:cacheprovider --junit-xml="$RESULTS/training.xml"
  rc=$?; [ $rc = 0 ] || [ $rc = 5 ] || status=1
fi

if [ -d tests ]; then
  echo "[test] lint (ruff, package.xml)"
  python -m pytest tests -q -p no:cacheprovider --junit-xml="$RESULTS/lint.xml" || status=1
fi

if [ -f firmware/Makefile ]; then
  echo "[test] firmware tests"
  make -C firmware test JUNIT_DIR="$RESULTS" || status=1
fi

echo "[test] results"
colcon test-result --test-result-base build --verbose || status=1
python scripts/test_summary.py build || status=1
exit $status
