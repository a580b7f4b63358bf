"""Build script for emotion_bringup (ament_python)."""
from glob import glob

from setuptools import find_packages, setup

package_name = 'emotion_bringup'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml', 'README.md']),
        ('share/' + package_name + '/config', glob('config/*.yaml')),
        ('share/' + package_name + '/launch', glob('*.launch.py')),
        ('share/' + package_name + '/urdf', glob('urdf/*.urdf')),
    ],
    install_requires=['setuptools'],
    extras_require={'test': ['pytest']},
    zip_safe=True,
    maintainer='Emotion robot maintainers',
    maintainer_email='maintainers@emotion-robot.invalid',
    description=('Launch files, parameter files and evaluation tools that start the emotion robot '
                 'as one system.'),
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'health_monitor = emotion_bringup.health_monitor:main',
        ],
    },
)
