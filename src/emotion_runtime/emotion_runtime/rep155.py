"""ROS4HRI (REP-155) conventions in one rclpy-free module: expression names, ids, topic names,
normalised regions of interest, and the bookkeeping of faces read from /humans/faces/*.

Why one module: fusion_node publishes the REP-155 output, fusion_node and tracker_node can read
faces from it (``face_source: hri``), and the tests and tools check names against it, so the
mapping of our labels to REP-155 names and the topic layout are written once.

Label mapping: the bundle's labels are the FER/CREMA-D names (angry, disgust, fear, happy,
neutral, sad, surprise); hri_msgs/Expression names the same categories angry, disgusted, scared,
happy, neutral, sad, surprised. ``expression_name`` maps one onto the other; a label that is
already a REP-155 name (or that REP-155 does not list) passes unchanged.

Topics (REP-155 names are absolute; ``prefix`` is the ``hri_prefix`` parameter, '/humans'):
``<prefix>/faces/tracked`` (hri_msgs/IdsList), ``<prefix>/faces/<id>/roi``
(hri_msgs/NormalizedRegionOfInterest2D), ``<prefix>/faces/<id>/expression`` (hri_msgs/Expression),
``<prefix>/voices/tracked`` (IdsList), ``<prefix>/voices/<id>/is_speaking`` (std_msgs/Bool).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

__all__ = ['DEFAULT_PREFIX', 'REP155_EXPRESSIONS', 'LABEL_TO_EXPRESSION', 'expression_name',
           'id_token', 'normalize_prefix', 'faces_tracked_topic', 'face_topic',
           'voices_tracked_topic', 'voice_topic', 'normalized_roi', 'HriFace', 'HriFaceTable',
           'HriFaceInput']

DEFAULT_PREFIX = '/humans'

# The expression names of hri_msgs/Expression (REP-155), in the message's order.
REP155_EXPRESSIONS: Tuple[str, ...] = (
    'neutral', 'angry', 'sad', 'happy', 'surprised', 'disgusted', 'scared', 'pleading',
    'vulnerable', 'despaired', 'guilty', 'disappointed', 'embarrassed', 'horrified', 'skeptical',
    'annoyed', 'furious', 'suspicious', 'rejected', 'bored', 'tired', 'asleep', 'confused',
    'amazed', 'excited')

# Our label -> REP-155 name, where they differ (angry, happy, neutral, sad are the same).
LABEL_TO_EXPRESSION: Dict[str, str] = {
    'disgust': 'disgusted',
    'fear': 'scared',
    'surprise': 'surprised',
}


def expression_name(label: str) -> str:
    """The hri_msgs/Expression name of one of our labels ('fear' -> 'scared'); others unchanged."""
    return LABEL_TO_EXPRESSION.get(label, label)


def id_token(raw_id: str) -> str:
    """An id as a valid ROS name token, used both in IdsList and in the per-id topic names, so
    that they always match ("f3" stays; "3" -> "id_3"; "a-b" -> "a_b")."""
    token = re.sub(r'[^A-Za-z0-9_]', '_', raw_id) or 'id_'
    return 'id_' + token if token[0].isdigit() else token


def normalize_prefix(prefix: str) -> str:
    """'/humans/' -> '/humans'; a relative prefix stays relative (follows the node namespace)."""
    p = prefix.strip()
    p = '/' + p.strip('/') if p.startswith('/') else p.strip('/')
    if p in ('', '/'):
        raise ValueError(f'hri prefix {prefix!r} is empty')
    return p


def faces_tracked_topic(prefix: str = DEFAULT_PREFIX) -> str:
    return f'{normalize_prefix(prefix)}/faces/tracked'


def face_topic(prefix: str, face_id: str, leaf: str) -> str:
    """<prefix>/faces/<id>/<leaf> (leaf: roi, expression, ...); the id is made a token."""
    return f'{normalize_prefix(prefix)}/faces/{id_token(face_id)}/{leaf}'


def voices_tracked_topic(prefix: str = DEFAULT_PREFIX) -> str:
    return f'{normalize_prefix(prefix)}/voices/tracked'


def voice_topic(prefix: str, voice_id: str, leaf: str) -> str:
    return f'{normalize_prefix(prefix)}/voices/{id_token(voice_id)}/{leaf}'


def normalized_roi(x: float, y: float, width: float, height: float, image_width: float,
                   image_height: float) -> Optional[Tuple[float, float, float, float]]:
    """A pixel box as (xmin, ymin, xmax, ymax) in [0, 1]; None for an empty box or image."""
    if not (image_width > 0 and image_height > 0 and width > 0 and height > 0):
        return None

    def clip(v: float) -> float:
        return min(1.0, max(0.0, float(v)))

    return (clip(x / image_width), clip(y / image_height),
            clip((x + width) / image_width), clip((y + height) / image_height))


@dataclass(frozen=True)
class HriFace:
    """A face read from REP-155 topics: id and normalised box (image of size 1 x 1)."""

    id: str
    xmin: float
    ymin: float
    xmax: float
    ymax: float
    confidence: float
    stamp_ns: int = 0

    @property
    def width(self) -> float:
        return self.xmax - self.xmin

    @property
    def height(self) -> float:
        return self.ymax - self.ymin


class HriFaceTable:
    """The tracked ids and the newest ROI of each (the faces a REP-155 detector reports).

    ``set_tracked`` returns (added, removed) ids, so the caller can subscribe to / drop the per-id
    roi topics; ``faces()`` gives the tracked faces that have a usable ROI, in tracked order.
    """

    def __init__(self) -> None:
        self.tracked: List[str] = []
        self._roi: Dict[str, HriFace] = {}
        self.bad_rois = 0

    def set_tracked(self, ids: Iterable[str]) -> Tuple[List[str], List[str]]:
        new = list(dict.fromkeys(str(i) for i in ids if str(i)))
        old = set(self.tracked)
        added = [i for i in new if i not in old]
        removed = [i for i in self.tracked if i not in set(new)]
        for i in removed:
            self._roi.pop(i, None)
        self.tracked = new
        return added, removed

    def set_roi(self, face_id: str, xmin: float, ymin: float, xmax: float, ymax: float,
                confidence: float, stamp_ns: int = 0) -> bool:
        """Store a face's ROI; False (and counted) when it is not a box inside [0, 1]."""
        vals = (xmin, ymin, xmax, ymax)
        if not all(0.0 <= v <= 1.0 for v in vals) or xmax <= xmin or ymax <= ymin:
            self.bad_rois += 1
            return False
        c = min(1.0, max(0.0, float(confidence))) if confidence == confidence else 0.0
        self._roi[face_id] = HriFace(face_id, float(xmin), float(ymin), float(xmax), float(ymax),
                                     c, int(stamp_ns))
        return True

    def faces(self) -> List[HriFace]:
        return [self._roi[i] for i in self.tracked if i in self._roi]


class HriFaceInput:
    """Faces from ``<prefix>/faces/tracked`` + ``<prefix>/faces/<id>/roi``, without rclpy.

    The node passes ``subscribe(topic, callback) -> handle`` and ``unsubscribe(handle)`` (its own
    subscription calls, with its QoS) and ``on_faces(faces, stamp_ns)``, called on every tracked
    list with the faces that have a ROI.  Call ``on_tracked(ids, stamp_ns)`` from the IdsList
    callback; per-id roi subscriptions follow the list.
    """

    def __init__(self, prefix: str, subscribe: Callable[[str, Callable[[Any], None]], Any],
                 unsubscribe: Callable[[Any], None],
                 on_faces: Callable[[Sequence[HriFace], int], None]) -> None:
        self.prefix = normalize_prefix(prefix)
        self.table = HriFaceTable()
        self._subscribe, self._unsubscribe, self._on_faces = subscribe, unsubscribe, on_faces
        self._subs: Dict[str, Any] = {}
        self.tracked_topic = faces_tracked_topic(self.prefix)

    def on_tracked(self, ids: Sequence[str], stamp_ns: int) -> None:
        added, removed = self.table.set_tracked(ids)
        for i in removed:
            handle = self._subs.pop(i, None)
            if handle is not None:
                self._unsubscribe(handle)
        for i in added:
            self._subs[i] = self._subscribe(face_topic(self.prefix, i, 'roi'),
                                            self._roi_callback(i))
        self._on_faces(self.table.faces(), stamp_ns)

    def _roi_callback(self, face_id: str) -> Callable[[Any], None]:
        def cb(msg: Any) -> None:
            if face_id in self.table.tracked:
                s = msg.header.stamp
                self.table.set_roi(face_id, msg.xmin, msg.ymin, msg.xmax, msg.ymax, msg.c,
                                   int(s.sec) * 1_000_000_000 + int(s.nanosec))
        return cb

    def close(self) -> None:
        for handle in self._subs.values():
            self._unsubscribe(handle)
        self._subs.clear()
