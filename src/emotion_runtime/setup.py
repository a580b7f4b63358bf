"""Build script for emotion_runtime (ament_python)."""
import os

from setuptools import find_packages, setup

package_name = 'emotion_runtime'


def tree(src: str, dst: str) -> list:
    """data_files entries that install every file below `src` under share/<pkg>/<dst>."""
    entries = []
    for root, _dirs, files in os.walk(src):
        if files:
            rel = os.path.relpath(root, src)
            entries.append((os.path.normpath(os.path.join('share', package_name, dst, rel)),
                            [os.path.join(root, f) for f in files]))
    return entries


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml', 'README.md']),
    ] + tree('models', 'models'),
    install_requires=['setuptools'],
    extras_require={'test': ['pytest']},
    zip_safe=True,
    maintainer='Emotion robot maintainers',
    maintainer_email='maintainers@emotion-robot.invalid',
    description='Torch-free model runtime and node kit of the emotion robot.',
    license='Apache-2.0',
)
