"""Build script for emotion_fusion (ament_python)."""
from glob import glob

from setuptools import find_packages, setup

package_name = 'emotion_fusion'

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
    description=('Fusion node: time-aligns vision and voice features, runs the per-face LSTM fusion '
                 'head and publishes emotion estimates.'),
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'fusion_node = emotion_fusion.fusion_node:main',
        ],
    },
)
