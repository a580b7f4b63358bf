"""Build script for emotion_perception (ament_python)."""
from glob import glob

from setuptools import find_packages, setup

package_name = 'emotion_perception'



setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml', 'README.md']),
        ('share/' + package_name + '/config', glob('config/*.yaml') + glob('config/*.xml')),
    ],
    install_requires=['setuptools'],
    extras_require={'test': ['pytest']},
    zip_safe=True,
    maintainer='Emotion robot maintainers',
    maintainer_email='maintainers@emotion-robot.invalid',
    description='Camera, microphone, face and voice perception nodes of the emotion robot.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'camera_node = emotion_perception.camera_node:main',
            'microphone_node = emotion_perception.microphone_node:main',
            'face_node = emotion_perception.face_node:main',
            'vocal_node = emotion_perception.vocal_node:main',
        ],
    },
)
