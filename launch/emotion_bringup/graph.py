"""The robot's node graph as plain data, shared by the launch files and the launch-free runner.

Why plain data: `ros2 launch` (robot.launch.py) and the demo / full-system test (which run where
ROS `launch` is not installed) must start exactly the same nodes with the same parameter files and
remappings. Both build their processes from `robot_graph()`, and the wiring tests check this one
description: every executable exists, every YAML parameter is declared by its node, every
remapped input is published by some node.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

TRANSPORTS = ('serial', 'microros', 'none')


@dataclass
class NodeSpec:
    """One node process: what to run, and how it is named, parameterised and wired."""

    package: str
    executable: str
    name: str
    param_files: list = field(default_factory=list)
    parameters: dict = field(default_factory=dict)
    remappings: list = field(default_factory=list)   # [(from, to)]
    respawn: bool = False

    def ros_args(self, namespace: str = '', log_level: str = 'info') -> list:
        """The `--ros-args ...` part of the command line for this node (launch-free start)."""
        args = ['--ros-args', '-r', f'__node:={self.name}']
        if namespace:
            args += ['-r', f'__ns:=/{namespace.strip("/")}']
        for path in self.param_files:
            args += ['--params-file', str(path)]
        for key, value in self.parameters.items():
            args += ['-p', f'{key}:={_literal(value)}']
        for src, dst in self.remappings:
            args += ['-r', f'{src}:={dst}']
        args += ['--log-level', log_level]
        return args


@dataclass
class GraphArgs:
    """The launch arguments of robot.launch.py, with their defaults."""

    camera: str = '0'                 # device index, video file or stream URL
    loop_files: bool = True           # loop video and audio file sources
    audio_device: str = ''            # sounddevice name/index; '' = system default
    audio_file: str = ''              # WAV/FLAC file instead of a microphone
    serial_port: str = '/dev/ttyACM0'  # Arduino port
    transport: str = 'serial'         # serial | microros | none
    model_bundle: str = ''            # '' = the bundle shipped with emotion_perception
    namespace: str = ''
    debug_image: bool = False
    health_monitor: bool = True       # the health_monitor node (stale diagnostics / outputs)
    log_level: str = 'info'
    config_dir: str = ''              # '' = emotion_bringup's share/config

    def validate(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, "
                             f"got '{self.transport}'")
        if self.log_level.lower() not in ('debug', 'info', 'warn', 'error', 'fatal'):
            raise ValueError(f"log_level must be debug|info|warn|error|fatal, got '{self.log_level}'")


def repo_root() -> Path:
    """The source checkout ($EMOTION_ROBOT_ROOT, set by scripts/env.sh, else from this file)."""
    env = os.environ.get('EMOTION_ROBOT_ROOT')
    return Path(env) if env else Path(__file__).resolve().parents[2]


def _share_or_source(package: str, relpath: str, source_dir: Path) -> Path:
    """share/<package>/<relpath> of the colcon install, else the same path in the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory  # noqa: PLC0415 - optional: source-tree fallback
        path = Path(get_package_share_directory(package)) / relpath
        if path.exists():
            return path
    except Exception:  # not built, or ament index missing: use the source tree
        pass
    return source_dir / relpath


def config_dir(override: str = '') -> Path:
    """emotion_bringup's parameter files (`override` if given)."""
    if override:
        return Path(override)
    return _share_or_source('emotion_bringup', 'config', repo_root() / 'launch')


def urdf_path() -> Path:
    """The head's URDF (pan/tilt joints, camera optical frame) for robot_state_publisher."""
    return _share_or_source('emotion_bringup', 'urdf/pan_tilt_head.urdf', repo_root() / 'launch')


def package_config(package: str, filename: str) -> Path:
    """A package's own defaults file, share/<pkg>/config/<file> (src/<pkg>/config in source)."""
    return _share_or_source(package, f'config/{filename}', repo_root() / 'src' / package)


def robot_graph(args: Optional[GraphArgs] = None) -> list:
    """The NodeSpecs of the whole robot for the given launch arguments.

    Each node gets its package's defaults file first, then emotion_bringup's robot.yaml (the
    robot-specific values: camera field of view, servo limits, ...), then the launch arguments.
    """
    args = args or GraphArgs()
    args.validate()
    robot_yaml = config_dir(args.config_dir) / 'robot.yaml'
    perception = [package_config('emotion_perception', 'perception.yaml'), robot_yaml]
    fusion = [package_config('emotion_fusion', 'fusion.yaml'), robot_yaml]
    tracker = [package_config('robot_tracker', 'tracker.yaml'), robot_yaml]
    bundle: dict[str, Any] = {'model_bundle': args.model_bundle}
    nodes = [
        NodeSpec('emotion_perception', 'camera_node', 'camera_node', perception,
                 {'source': args.camera, 'loop': args.loop_files}),
        NodeSpec('emotion_perception', 'microphone_node', 'microphone_node', perception,
                 {'device': args.audio_device, 'file': args.audio_file,
                  'loop': args.loop_files}),
        NodeSpec('emotion_perception', 'face_node', 'face_node', perception,
                 dict(bundle, publish_debug_image=args.debug_image)),
        NodeSpec('emotion_perception', 'vocal_node', 'vocal_node', perception, dict(bundle),
                 respawn=True),
        NodeSpec('emotion_fusion', 'fusion_node', 'fusion_node', fusion, dict(bundle)),
        NodeSpec('robot_tracker', 'tracker_node', 'tracker_node', tracker,
                 {'transport': args.transport, 'port': args.serial_port}),
    ]
    if args.health_monitor:
        # Watches the others' /diagnostics and main outputs; publishes `health` (see its module).
        nodes.append(NodeSpec('emotion_bringup', 'health_monitor', 'health_monitor',
                              [robot_yaml],
                              {'expected_nodes': ','.join(n.name for n in nodes)}))
    return nodes


def executable_path(spec: NodeSpec) -> str:
    """Where colcon installed a NodeSpec's executable."""
    from ament_index_python.packages import get_package_prefix  # noqa: PLC0415 - only after a colcon build
    return os.path.join(get_package_prefix(spec.package), 'lib', spec.package, spec.executable)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, str):
        # YAML-quoted, so that '0' stays the string "0" and '' stays an empty string.
        return "'" + value.replace("'", "''") + "'"
    return str(value)
