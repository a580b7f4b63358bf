#!/usr/bin/env bash
# One idempotent setup of the whole workspace:
#   1. Debian packages (as root; otherwise prints the apt line and stops),
#   2. the virtual environment .venv with pinned ROS 2 Jazzy wheels and Python libraries,
#   3. the fix of the ROS wheels' exported CMake paths,
#   4. colcon build of every package, and the editable install of the training package.
# Each step is skipped when its inputs did not change since it last succeeded, so a second run with
# nothing changed ends in seconds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
STAMPS="$VENV/.stamps"
PY_BOOT="${PYTHON:-python3.11}"
command -v "$PY_BOOT" >/dev/null 2>&1 || PY_BOOT=python3

# One setup at a time (several shells may call it, e.g. tests that need the build).
mkdir -p "$ROOT/log"
exec 9>"$ROOT/log/.setup.lock"
flock 9

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
stamp_ok() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
stamp_set() { mkdir -p "$STAMPS"; echo "$2" > "$STAMPS/$1"; }

# --- 1. Debian packages ----------------------------------------------------------------------
APT_PKGS=$(grep -v '^\s*#' requirements/apt.txt | grep -v '^\s*$' | tr '\n' ' ')
missing=""
for p in $APT_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    log "installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends $missing
  else
    echo "Missing Debian packages. Run as root, or install them first:" >&2
    echo "  sudo apt-get install -y$missing" >&2
    exit 1
  fi
fi

# --- 2. virtual environment ------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV with $($PY_BOOT --version)"
  "$PY_BOOT" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
REQ_HASH=$(hash_of requirements/ros.txt requirements/python.txt training/pyproject.toml)
if ! stamp_ok pip "$REQ_HASH"; then
  log "installing Python packages (ROS 2 Jazzy wheels, torch, onnxruntime, ...)"
  PIP_NO_WARN=1 python -m pip install -q --disable-pip-version-check --upgrade pip 'setuptools<80' wheel
  PIP_NO_WARN=1 python -m pip install -q --disable-pip-version-check -r requirements/ros.txt -r requirements/python.txt
  # The CMake files exported by the ROS wheels point at the wheel builder's Python; point them here.
  PY_INC=$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  NP_INC=$(python -c 'import numpy; print(numpy.get_include())')
  { grep -rlZ --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" "$VENV/lib" 2>/dev/null || true; } \
    | xargs -0 -r sed -i \
        -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$NP_INC#g" \
        -e "s#/opt/python/cp311-cp311/include/python3.11#$PY_INC#g"
  PIP_NO_WARN=1 python -m pip install -q --disable-pip-version-check --no-deps -e training
  rm -f "$STAMPS/colcon"
  stamp_set pip "$REQ_HASH"
fi

# --- 3. colcon build -------------------------------------------------------------------------
# src/hri_msgs is a local build of ROS4HRI's interfaces (REP-155). Where an hri_msgs is installed
# outside this workspace (ROS4HRI from apt, an underlay in AMENT_PREFIX_PATH, or the venv), that
# one is used: the local package is skipped and its old build removed, so the wire types are the
# real package's. HRI_MSGS_PREFIX=/path forces a prefix; HRI_MSGS_PREFIX=local forces the local one.
external_hri_msgs() {
  [ "${HRI_MSGS_PREFIX:-}" = local ] && return 0
  if [ -n "${HRI_MSGS_PREFIX:-}" ]; then echo "$HRI_MSGS_PREFIX"; return 0; fi
  local prefix
  for prefix in $(echo "${AMENT_PREFIX_PATH:-}" | tr ':' ' ') "$VENV" /opt/ros/jazzy; do
    case "$prefix" in "$ROOT"/install*) continue ;; esac
    if [ -e "$prefix/share/ament_index/resource_index/packages/hri_msgs" ]; then
      echo "$prefix"; return 0
    fi
  done
}
HRI_PREFIX=$(external_hri_msgs)
SKIP_ARGS=()
BUILD_PREFIX="$VENV"
if [ -n "$HRI_PREFIX" ]; then
  SKIP_ARGS=(--packages-skip hri_msgs)
  [ "$HRI_PREFIX" = "$VENV" ] || BUILD_PREFIX="$HRI_PREFIX:$VENV"
fi
SRC_HASH=$( { (git ls-files -co --exclude-standard src launch 2>/dev/null || find src launch -type f) \
  | LC_ALL=C sort | xargs -d '\n' sha256sum 2>/dev/null; echo "hri_msgs:${HRI_PREFIX:-local}"; } \
  | sha256sum | cut -c1-16)
if ! stamp_ok colcon "$SRC_HASH" || [ ! -f install/setup.bash ]; then
  log "colcon build"
  if [ -n "$HRI_PREFIX" ]; then
    log "using the installed hri_msgs in $HRI_PREFIX (skipping src/hri_msgs)"
    rm -rf install/hri_msgs build/hri_msgs
  fi
  export AMENT_PREFIX_PATH="$BUILD_PREFIX" CMAKE_PREFIX_PATH="$BUILD_PREFIX"
  colcon --log-base log build --symlink-install --event-handlers console_direct- \
    "${SKIP_ARGS[@]}" \
    --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=ON
  stamp_set colcon "$SRC_HASH"
else
  log "colcon build is up to date"
fi
log "done. Put the workspace in your shell with:  source scripts/env.sh"
