"""fusion_node's ROS4HRI (REP-155) side: publishes /humans/... and reads faces from it.

Why here (fusion_node) and not in face_node: the face ids of the REP-155 topics must be the same
on every topic, and fusion_node sees both the face boxes (``faces``) and the estimates per face
id, so one node writes ``<prefix>/faces/tracked``, ``<prefix>/faces/<id>/roi`` and
``<prefix>/faces/<id>/expression`` with the same id tokens (emotion_runtime.rep155.id_token).
With ``face_source: hri`` a ROS4HRI detector (hri_face_detect) owns tracked/roi; this node then
reads them (``HriFaceInput``) and publishes only the expressions.

Names, the label mapping and the topic layout are emotion_runtime.rep155's (rclpy-free, tested).
QoS: reliable, depth 10, volatile (what ROS4HRI tools subscribe with).
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Dict, Iterable, Sequence

from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool

from emotion_msgs.msg import Emotion, EmotionFeature, FaceArray
from emotion_runtime.rep155 import (
    HriFace,
    HriFaceInput,
    expression_name,
    face_topic,
    faces_tracked_topic,
    id_token,
    normalize_prefix,
    normalized_roi,
    voice_topic,
    voices_tracked_topic,
)
from hri_msgs.msg import Expression, IdsList, NormalizedRegionOfInterest2D

__all__ = ['HriOutput', 'subscribe_hri_faces', 'HRI_QOS']

HRI_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class HriOutput:
    """The REP-155 publishers of one configured node (``node`` is a KitNode).

    ``faces=False`` (face_source hri): no tracked/roi output.  Per-id publishers are plain
    publishers made at an id's first message and destroyed when the id goes (``drop``) and on
    ``close`` (deactivate); the tracked lists are lifecycle publishers.
    """

    def __init__(self, node: Any, prefix: str, faces: bool = True) -> None:
        self.node = node
        self.prefix = normalize_prefix(prefix)
        self.faces_tracked = (node.lifecycle_publisher(IdsList, faces_tracked_topic(self.prefix),
                                                       HRI_QOS) if faces else None)
        self.voices_tracked = node.lifecycle_publisher(
            IdsList, voices_tracked_topic(self.prefix), HRI_QOS)
        self._pubs: Dict[str, Any] = {}        # topic -> publisher
        self._roi_ids: set = set()
        self.published = 0

    def _publisher(self, msg_type: Any, topic: str) -> Any:
        pub = self._pubs.get(topic)
        if pub is None:
            pub = self._pubs[topic] = self.node.create_publisher(msg_type, topic, HRI_QOS)
        return pub

    def _destroy(self, topics: Iterable[str]) -> None:
        for t in list(topics):
            pub = self._pubs.pop(t, None)
            if pub is not None:
                with contextlib.suppress(Exception):
                    self.node.destroy_publisher(pub)

    # ------------------------------------------------------------------ faces
    def on_faces(self, msg: FaceArray) -> None:
        """IdsList of the faces in this image, and each face's normalised ROI."""
        if self.faces_tracked is None:
            return
        ids = []
        for f in msg.faces:
            if not f.id:
                continue
            token = id_token(f.id)
            ids.append(token)
            roi = normalized_roi(f.x, f.y, f.width, f.height, f.image_width, f.image_height)
            if roi is None:
                continue
            self._publisher(NormalizedRegionOfInterest2D, face_topic(self.prefix, token, 'roi')) \
                .publish(NormalizedRegionOfInterest2D(
                    header=msg.header, xmin=roi[0], ymin=roi[1], xmax=roi[2], ymax=roi[3],
                    c=float(min(1.0, max(0.0, f.confidence)))))
        self.faces_tracked.publish(IdsList(header=msg.header, ids=ids))
        gone = self._roi_ids - set(ids)
        self._destroy(face_topic(self.prefix, i, 'roi') for i in gone)
        self._roi_ids = set(ids)

    # ------------------------------------------------------------------ expressions
    def on_emotion(self, msg: Emotion) -> None:
        """One fused estimate as hri_msgs/Expression on <prefix>/faces/<id>/expression."""
        if not msg.face_id or not msg.expression:
            return
        self._publisher(Expression, face_topic(self.prefix, msg.face_id, 'expression')).publish(
            Expression(header=msg.header, expression=expression_name(msg.expression),
                       valence=float(msg.valence), arousal=float(msg.arousal),
                       confidence=float(msg.confidence)))
        self.published += 1

    def drop(self, face_ids: Iterable[str]) -> None:
        """Face tracks that ended: their expression publishers go."""
        self._destroy(face_topic(self.prefix, i, 'expression') for i in face_ids)

    # ------------------------------------------------------------------ voices
    def on_voice(self, msg: EmotionFeature) -> None:
        """The microphone's voice: voices/tracked and voices/<id>/is_speaking (the VAD flag)."""
        token = id_token(msg.source_id or 'voice')
        self.voices_tracked.publish(IdsList(header=msg.header, ids=[token]))
        self._publisher(Bool, voice_topic(self.prefix, token, 'is_speaking')).publish(
            Bool(data=bool(msg.speech)))

    def close(self) -> None:
        self._destroy(list(self._pubs))
        self._roi_ids = set()


def subscribe_hri_faces(node: Any, prefix: str,
                        on_faces: Callable[[Sequence[HriFace], int], None]) -> HriFaceInput:
    """Read faces from <prefix>/faces/tracked + /faces/<id>/roi (face_source hri): the IdsList
    subscription is an active subscription of ``node``, the per-id roi subscriptions follow the
    list (rep155.HriFaceInput); ``on_faces(faces, stamp_ns)`` runs on every tracked list."""
    def subscribe(topic: str, cb: Callable[[Any], None]) -> Any:
        return node.create_subscription(NormalizedRegionOfInterest2D, topic, cb, HRI_QOS)

    def unsubscribe(sub: Any) -> None:
        with contextlib.suppress(Exception):
            node.destroy_subscription(sub)

    source = HriFaceInput(prefix, subscribe, unsubscribe, on_faces)

    def on_tracked(msg: IdsList) -> None:
        s = msg.header.stamp
        source.on_tracked(list(msg.ids), int(s.sec) * 1_000_000_000 + int(s.nanosec))

    node.active_subscription(IdsList, source.tracked_topic, on_tracked, HRI_QOS)
    return source
