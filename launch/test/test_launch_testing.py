"""launch_testing: start robot.launch.py for real where ROS `launch` is installed (a robot, Docker).

Skipped on machines without launch_testing (such as the development VMs of this project, which get
ROS 2 from PyPI wheels); test_launch_files.py and test_graph_wiring.py cover the wiring there.
"""
import pytest

launch_testing = pytest.importorskip('launch_testing', reason='ROS launch_testing is not installed')
launch_ros = pytest.importorskip('launch_ros', reason='ROS launch_ros is not installed')

import os  # noqa: E402
import unittest  # noqa: E402

import launch  # noqa: E402
from ament_index_python.packages import get_package_share_directory  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402


@pytest.mark.launch_test
def generate_test_description():
    robot = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(
            get_package_share_directory('emotion_bringup'), 'launch', 'robot.launch.py')),
        launch_arguments={'transport': 'none', 'camera': '99'}.items())
    return launch.LaunchDescription([robot, launch_testing.actions.ReadyToTest()])


class TestNodesRun(unittest.TestCase):

    def test_tracker_publishes_state(self, proc_output):
        proc_output.assertWaitFor('tracker', timeout=30, stream='stderr')
