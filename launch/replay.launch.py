"""Replay evaluation: play a bag into perception + fusion, record /emotion, evaluate it.

    ros2 launch emotion_bringup replay.launch.py bag:=demo_bag out:=eval_live rate:=1.0

Needs ROS 2 from apt (`ros2 bag`). On machines without it, the same steps run with
`emotion-bag replay` / `emotion-bag record` / `emotion-eval bag` (see the README).
"""
from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    ExecuteProcess,
    OpaqueFunction,
    RegisterEventHandler,
)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from emotion_bringup.graph import GraphArgs, robot_graph

REPLAYED_NODES = ('face_node', 'vocal_node', 'fusion_node')


def _launch_setup(context, *_args, **_kwargs):
    bag = LaunchConfiguration('bag').perform(context)
    out = LaunchConfiguration('out').perform(context)
    rate = LaunchConfiguration('rate').perform(context)
    bundle = LaunchConfiguration('model_bundle').perform(context)
    if not bag:
        raise ValueError('replay.launch.py needs bag:=<bag directory>')
    specs = [s for s in robot_graph(GraphArgs(model_bundle=bundle, transport='none'))
             if s.name in REPLAYED_NODES]
    # A bag of `emotion-bag make` holds JPEG image_raw/compressed (raw image_raw with
    # --raw-images): face_node reads both.
    for s in specs:
        if s.name == 'face_node':
            s.parameters = {**s.parameters, 'image_input': 'both'}
    nodes = [Node(package=s.package, executable=s.executable, name=s.name,
                  parameters=[str(p) for p in s.param_files] + [s.parameters],
                  remappings=s.remappings, output='screen') for s in specs]
    record = ExecuteProcess(cmd=['ros2', 'bag', 'record', '-o', f'{out}/recording', '/emotion',
                                 '/emotion/ground_truth', '/faces'], output='screen')
    play = ExecuteProcess(cmd=['ros2', 'bag', 'play', bag, '--rate', rate, '--delay', '3'],
                          output='screen')
    evaluate = ExecuteProcess(cmd=['emotion-eval', 'bag', f'{out}/recording', '--mode', 'live',
                                   '--truth', bag, '--out', f'{out}/report'], output='screen')
    return nodes + [record, play,
                    RegisterEventHandler(OnProcessExit(target_action=play,
                                                       on_exit=[evaluate])),
                    RegisterEventHandler(OnProcessExit(target_action=evaluate,
                                                       on_exit=[EmitEvent(event=Shutdown())]))]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument('bag', default_value='', description='bag to replay (emotion-bag make)'),
        DeclareLaunchArgument('out', default_value='replay_eval',
                              description='directory for the recording and the report'),
        DeclareLaunchArgument('rate', default_value='1.0', description='playback speed factor'),
        DeclareLaunchArgument('model_bundle', default_value='',
                              description="model bundle ('' = the shipped one)"),
        OpaqueFunction(function=_launch_setup),
    ])
