"""A deterministic stand-in for ModelBundle.fusion_step, for tests that need a chosen label to win.

Why: a random-weight bundle decides labels by its weights, so engine tests that check *which* label
is published (hysteresis, masks, voice assignment) use this fake, whose output is readable:
probabilities = softmax(scale * (vision[:C] * vp + voice[:C] * ap)), valence/arousal = (vp, ap)
(so a test sees the presence mask the engine passed), and h counts the steps of each row.
The node test over DDS runs the real ONNX step instead.
"""
from __future__ import annotations

import numpy as np

LABELS = ['angry', 'happy', 'neutral', 'sad']


class FakeFusion:
    def __init__(self, labels=LABELS, vision_size: int = 8, voice_size: int = 6,
                 scale: float = 10.0) -> None:
        self.labels = list(labels)
        self.vision_embedding_size = vision_size
        self.voice_embedding_size = voice_size
        self.scale = scale
        self.calls: list[dict] = []

    def initial_state(self, n: int = 1):
        return np.zeros((1, n, 4), np.float32), np.zeros((1, n, 4), np.float32)

    def fusion_step(self, ve, vp, ae, ap, h, c):
        self.calls.append(dict(ve=ve.copy(), vp=vp.copy(), ae=ae.copy(), ap=ap.copy(),
                               h=h.copy()))
        k = len(self.labels)
        score = ve[:, :k] * vp[:, None] + ae[:, :k] * ap[:, None]
        z = np.exp(self.scale * (score - score.max(axis=1, keepdims=True)))
        probs = (z / z.sum(axis=1, keepdims=True)).astype(np.float32)
        va = np.stack([vp, ap], axis=1).astype(np.float32)
        return probs, va, h + 1.0, c


def onehot(index: int, size: int, value: float = 1.0) -> np.ndarray:
    v = np.zeros(size, np.float32)
    v[index] = value
    return v
