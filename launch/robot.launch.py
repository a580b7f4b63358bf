"""Start the whole emotion robot: camera, microphone, perception, fusion and the pan/tilt tracker.

    ros2 launch emotion_bringup robot.launch.py camera:=0 serial_port:=/dev/ttyACM0
    ros2 launch emotion_bringup robot.launch.py camera:=clip.mp4 audio_file:=speech.wav transport:=none

The nodes, parameter files and remappings come from emotion_bringup.graph.robot_graph(), the same
description that the launch-free runner (demo, full-system test) starts.
"""
from dataclasses import fields
import os

from emotion_bringup.graph import GraphArgs, package_config, robot_graph
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, ExecuteProcess, OpaqueFunction,
                            SetEnvironmentVariable)
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

DESCRIPTIONS = {
    'camera': 'camera device index, video file or stream URL',
    'loop_files': 'loop video and audio file sources (true/false)',
    'audio_device': "sounddevice input device name or index ('' = default)",
    'audio_file': "WAV/FLAC file to play as the microphone ('' = live microphone)",
    'serial_port': "the Arduino's serial port, or 'sim' for the simulated Uno (firmware/build)",
    'transport': 'pan/tilt transport: serial | microros | none',
    'model_bundle': "model bundle directory ('' = the bundle shipped with emotion_perception)",
    'namespace': 'namespace of every node and topic of the robot',
    'debug_image': 'publish the annotated debug image (true/false)',
    'log_level': 'log level of every node: debug | info | warn | error',
    'config_dir': "directory with robot.yaml ('' = emotion_bringup's config)",
}


def _graph_args(context) -> GraphArgs:
    values = {}
    for f in fields(GraphArgs):
        text = LaunchConfiguration(f.name).perform(context)
        values[f.name] = text.lower() in ('1', 'true', 'yes') if f.type in (bool, 'bool') else text
    return GraphArgs(**values)


def _launch_setup(context, *_args, **_kwargs):
    args = _graph_args(context)
    actions = []
    if 'FASTRTPS_DEFAULT_PROFILES_FILE' not in os.environ:
        # Large socket buffers / SHM segment so that 640x480 images are not lost (see the file).
        actions.append(SetEnvironmentVariable(
            'FASTRTPS_DEFAULT_PROFILES_FILE',
            str(package_config('emotion_perception', 'fastdds_large_images.xml'))))
    if args.serial_port == 'sim' and args.transport == 'serial':
        # The simulated Uno (simavr running the real firmware) behind a pty with a fixed name.
        from emotion_bringup.sim_board import SIM_PORT, sim_board_command
        actions.append(ExecuteProcess(cmd=sim_board_command(), output='screen',
                                      name='sim_board'))
        args.serial_port = SIM_PORT
    for spec in robot_graph(args):
        actions.append(Node(
            package=spec.package, executable=spec.executable, name=spec.name,
            namespace=args.namespace or None,
            parameters=[str(p) for p in spec.param_files] + [spec.parameters],
            remappings=spec.remappings, respawn=spec.respawn, respawn_delay=2.0,
            arguments=['--ros-args', '--log-level', args.log_level], output='screen'))
    return actions


def generate_launch_description() -> LaunchDescription:
    defaults = GraphArgs()
    declared = [DeclareLaunchArgument(f.name, default_value=str(getattr(defaults, f.name)).lower()
                                      if isinstance(getattr(defaults, f.name), bool)
                                      else str(getattr(defaults, f.name)),
                                      description=DESCRIPTIONS[f.name])
                for f in fields(GraphArgs)]
    return LaunchDescription(declared + [OpaqueFunction(function=_launch_setup)])
