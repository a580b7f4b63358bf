"""Start the whole emotion robot: camera, microphone, perception, fusion and the pan/tilt tracker.

    ros2 launch emotion_bringup robot.launch.py camera:=0 serial_port:=/dev/ttyACM0
    ros2 launch emotion_bringup robot.launch.py camera:=clip.mp4 audio_file:=speech.wav transport:=none

The nodes, parameter files and remappings come from emotion_bringup.graph.robot_graph(), the same
description that the launch-free runner (demo, full-system test) starts.

DDS discovery stays on this machine unless the environment says otherwise: without
ROS_AUTOMATIC_DISCOVERY_RANGE the nodes get LOCALHOST. To reach the robot from another computer,
export ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET and a ROS_DOMAIN_ID of its own before launching (and
see the README on SROS2 enclaves for a shared network).
"""
import os
from dataclasses import fields

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from emotion_bringup.graph import GraphArgs, package_config, robot_graph, urdf_path
from emotion_bringup.sim_board import SIM_PORT, sim_board_command

AUTOSTART = {'autostart': True}

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
    'health_monitor': 'run health_monitor: stale diagnostics / outputs on `health` (true/false)',
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
    if not os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE'):
        # Deployment default: discovery on this host only (SUBNET opens it up; see the doc above).
        actions.append(SetEnvironmentVariable('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST'))
    if 'FASTRTPS_DEFAULT_PROFILES_FILE' not in os.environ:
        # Large socket buffers / SHM segment so that 640x480 images are not lost (see the file).
        actions.append(SetEnvironmentVariable(
            'FASTRTPS_DEFAULT_PROFILES_FILE',
            str(package_config('emotion_perception', 'fastdds_large_images.xml'))))
    if args.serial_port == 'sim' and args.transport == 'serial':
        # The simulated Uno (simavr running the real firmware) behind a pty with a fixed name.
        actions.append(ExecuteProcess(cmd=sim_board_command(), output='screen',
                                      name='sim_board'))
        args.serial_port = SIM_PORT
    for spec in robot_graph(args):
        # Every node is a lifecycle node (emotion_runtime.node_kit); autostart (a read-only
        # parameter of each node) brings it to active by itself, so no lifecycle manager is needed
        # here and `ros2 lifecycle` can still deactivate / reconfigure it at run time.
        actions.append(LifecycleNode(
            package=spec.package, executable=spec.executable, name=spec.name,
            namespace=args.namespace or '',
            parameters=[str(p) for p in spec.param_files] + [spec.parameters, AUTOSTART],
            remappings=spec.remappings, respawn=spec.respawn, respawn_delay=2.0,
            arguments=['--ros-args', '--log-level', args.log_level], output='screen'))
    # TF of the head: tracker_node publishes joint_states (pan_joint, tilt_joint); the URDF puts
    # pan_tilt_base, the camera's optical frame and the microphone in one tree (RViz, hri_rviz).
    actions.append(Node(
        package='robot_state_publisher', executable='robot_state_publisher',
        name='robot_state_publisher', namespace=args.namespace or '',
        parameters=[{'robot_description': urdf_path().read_text()}], output='screen'))
    return actions


def generate_launch_description() -> LaunchDescription:
    defaults = GraphArgs()
    declared = [DeclareLaunchArgument(f.name, default_value=str(getattr(defaults, f.name)).lower()
                                      if isinstance(getattr(defaults, f.name), bool)
                                      else str(getattr(defaults, f.name)),
                                      description=DESCRIPTIONS[f.name])
                for f in fields(GraphArgs)]
    return LaunchDescription(declared + [OpaqueFunction(function=_launch_setup)])
