"""Build script for robot_tracker (ament_python)."""
from glob import glob

from setuptools import find_packages, setup

package_name = 'robot_tracker'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml', 'README.md']),
        ('share/' + package_name + '/config', glob('config/*.yaml')),

    ],
    install_requires=['setuptools'],
    extras_require={'test': ['pytest']},
    zip_safe=True,
    maintainer='Emotion robot maintainers',
    maintainer_email='maintainers@emotion-robot.invalid',
    description=('Tracker node: selects a face and closes the loop on the Arduino pan/tilt servos '
                 'over serial or micro-ROS.'),
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'tracker_node = robot_tracker.tracker_node:main',
        ],
    },
)
