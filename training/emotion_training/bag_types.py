"""The rosbags type store for our bags: ROS 2 Jazzy's standard types plus emotion_msgs.

Why: bags are written and read without rosbag2 (not installable here) through the `rosbags`
package, which needs the .msg definitions of our own types. They are read from the installed
emotion_msgs share directory (or the source tree), so the bag tools can never drift from the
messages that the nodes publish.
"""
from __future__ import annotations

import functools
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore

MSG_PACKAGE = 'emotion_msgs'


def msg_dir() -> Path:
    """The directory holding emotion_msgs' .msg files (installed share dir, else source tree)."""
    try:
        from ament_index_python.packages import get_package_share_directory
        path = Path(get_package_share_directory(MSG_PACKAGE)) / 'msg'
        if path.is_dir():
            return path
    except Exception:  # ament index absent or package not built: fall back to the source
        pass
    path = Path(__file__).resolve().parents[2] / 'src' / MSG_PACKAGE / 'msg'
    if not path.is_dir():
        raise FileNotFoundError(f'cannot find the {MSG_PACKAGE} .msg files (looked in the ament '
                                f'index and in {path}); build the workspace first')
    return path


@functools.lru_cache(maxsize=1)
def typestore():
    """A rosbags Typestore for ROS 2 Jazzy with every emotion_msgs type registered."""
    store = get_typestore(Stores.ROS2_JAZZY)
    types: dict = {}
    for path in sorted(msg_dir().glob('*.msg')):
        types.update(get_types_from_msg(path.read_text(), f'{MSG_PACKAGE}/msg/{path.stem}'))
    store.register(types)
    return store
