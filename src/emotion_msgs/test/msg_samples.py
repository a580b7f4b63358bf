"""One fully populated sample of every emotion_msgs type, shared by publisher and checker.

Every field gets a value that differs from its default, so a field that is dropped, renamed,
retyped or truncated anywhere between the two processes makes the comparison fail.
"""
from __future__ import annotations

import array
from typing import Any

from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from emotion_msgs.msg import AudioChunk, Emotion, EmotionFeature, Face, FaceArray, PanTilt, TrackerState


def _header(frame: str, sec: int) -> Header:
    return Header(stamp=Time(sec=sec, nanosec=123456789), frame_id=frame)


def _face(i: int) -> Face:
    return Face(id=f'f{i}', x=10.5 + i, y=20.25, width=64.0, height=72.5, image_width=640,
                image_height=480, confidence=0.875, age=3 + i)


def samples() -> dict[str, Any]:
    """Type name -> a message with every field set to a non-default value."""
    return {
        'AudioChunk': AudioChunk(header=_header('microphone_link', 11), sample_rate=16000,
                                 channels=2, encoding=AudioChunk.ENCODING_S16LE,
                                 data=bytes(range(256)) * 4),
        'Face': _face(1),
        'FaceArray': FaceArray(header=_header('camera_optical_frame', 12),
                               faces=[_face(1), _face(2)]),
        'EmotionFeature': EmotionFeature(
            header=_header('camera_optical_frame', 13), source_id='f1',
            modality=EmotionFeature.MODALITY_VISION, embedding=[0.5, -1.25, 3.0],
            logits=[1.0, 2.0, -3.5], labels=['angry', 'happy', 'sad'], quality=0.75,
            speech=True),
        'Emotion': Emotion(
            header=_header('camera_optical_frame', 14), face_id='f7', expression=Emotion.HAPPY,
            confidence=0.625, labels=['angry', 'happy'], probabilities=[0.375, 0.625],
            valence=0.5, arousal=-0.25,
            modalities=Emotion.MODALITY_VISION | Emotion.MODALITY_VOICE),
        'PanTilt': PanTilt(header=_header('pan_tilt_base', 15), pan=0.25, tilt=-0.125,
                           max_velocity=1.5),
        'TrackerState': TrackerState(
            header=_header('camera_optical_frame', 16), target_id='f2',
            mode=TrackerState.MODE_SEARCHING, error_x=0.5, error_y=-0.25,
            command=PanTilt(header=_header('pan_tilt_base', 17), pan=-0.5, tilt=0.0625,
                            max_velocity=0.75),
            link=TrackerState.LINK_UP, link_detail='/dev/ttyACM0 ok'),
    }


def to_plain(msg: Any) -> Any:
    """A message as nested dicts, lists and plain values, for equality with a readable diff."""
    if hasattr(msg, 'get_fields_and_field_types'):
        return {name: to_plain(getattr(msg, name)) for name in msg.get_fields_and_field_types()}
    if isinstance(msg, (list, tuple)):
        return [to_plain(v) for v in msg]
    if isinstance(msg, array.array):
        return msg.tolist()
    if isinstance(msg, (bytes, bytearray)):
        return list(msg)
    if hasattr(msg, 'tolist'):
        return msg.tolist()
    return msg


def non_default_fields(msg: Any, prefix: str = '') -> list[str]:
    """Names of the fields that were left at their default value (should be none)."""
    left = []
    default = type(msg)()
    for name in msg.get_fields_and_field_types():
        value, dflt = getattr(msg, name), getattr(default, name)
        if hasattr(value, 'get_fields_and_field_types'):
            left += non_default_fields(value, f'{prefix}{name}.')
        elif to_plain(value) == to_plain(dflt):
            left.append(prefix + name)
    return left
