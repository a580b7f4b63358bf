"""The rosbags type store for our bags: ROS 2 Jazzy's standard types plus emotion_msgs and
hri_msgs (ROS4HRI, REP-155), and the message definitions written into a bag.

Why: bags are written and read without rosbag2 (not installable here) through the `rosbags`
package, which needs the .msg definitions of our own types. They are read from the installed
share directories (or the source tree), so the bag tools can never drift from the messages that
the nodes publish.

``msgdef`` is the definition text stored with each connection: rosbags' generator writes an
empty string constant (emotion_msgs/Emotion ``UNKNOWN = ""``) as ``string UNKNOWN=``, which
rosbags' own AnyReader and the mcap ROS 2 reader refuse ("Could not parse"); it is written
``string UNKNOWN=""`` here, so every bag the project writes opens in other tools.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore

MSG_PACKAGE = 'emotion_msgs'
MSG_PACKAGES = (MSG_PACKAGE, 'hri_msgs')


def msg_dir(package: str = MSG_PACKAGE) -> Path:
    """The directory holding a package's .msg files (installed share dir, else source tree)."""
    try:
        from ament_index_python.packages import get_package_share_directory  # noqa: PLC0415 - ROS optional
        path = Path(get_package_share_directory(package)) / 'msg'
        if path.is_dir():
            return path
    except Exception:  # ament index absent or package not built: fall back to the source
        pass
    path = Path(__file__).resolve().parents[2] / 'src' / package / 'msg'
    if not path.is_dir():
        raise FileNotFoundError(f'cannot find the {package} .msg files (looked in the ament '
                                f'index and in {path}); build the workspace first')
    return path


@functools.lru_cache(maxsize=1)
def typestore():
    """A rosbags Typestore for ROS 2 Jazzy with every emotion_msgs type registered."""
    store = get_typestore(Stores.ROS2_JAZZY)
    types: dict = {}
    for package in MSG_PACKAGES:
        for path in sorted(msg_dir(package).glob('*.msg')):
            types.update(get_types_from_msg(path.read_text(), f'{package}/msg/{path.stem}'))
    store.register(types)
    return store


_EMPTY_STRING_CONSTANT = re.compile(r'^(w?string(?:<=\d+)?\s+[A-Za-z_]\w*)=\s*$', re.MULTILINE)


@functools.lru_cache(maxsize=None)
def msgdef(msgtype: str) -> str:
    """The ROS 2 definition text of ``msgtype`` (with its dependencies) as stored in a bag."""
    text, _ = typestore().generate_msgdef(msgtype, ros_version=2)
    return _EMPTY_STRING_CONSTANT.sub(r'\1=""', text)


def add_connection(writer, topic: str, msgtype: str, **kwargs):
    """``writer.add_connection`` with our type store, the readable ``msgdef`` and its RIHS01
    hash (what rosbag2 stores), so rosbags' AnyReader and mcap-ros2 readers open the bag."""
    ts = typestore()
    return writer.add_connection(topic, msgtype, typestore=ts, msgdef=msgdef(msgtype),
                                 rihs01=ts.hash_rihs01(msgtype), **kwargs)
