"""Build script for emotion_test_tools (ament_python)."""
from setuptools import find_packages, setup

package_name = 'emotion_test_tools'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml', 'README.md']),
    ],
    install_requires=['setuptools'],
    extras_require={'test': ['pytest']},
    zip_safe=True,
    maintainer='Emotion robot maintainers',
    maintainer_email='maintainers@emotion-robot.invalid',
    description='Shared test harness of the emotion robot packages.',
    license='Apache-2.0',
)
