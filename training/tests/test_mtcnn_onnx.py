"""The shipped MTCNN ONNX nets + emotion_perception's numpy pipeline against facenet-pytorch's own
MTCNN (runs only where facenet-pytorch and torch are importable: the optional training extra)."""
import hashlib
import pathlib

import cv2
import numpy as np
import pytest

pytest.importorskip('torch')
from emotion_training import mtcnn_onnx  # noqa: E402

try:
    FACENET = mtcnn_onnx.import_facenet()
except ImportError:                                  # optional: pip install --no-deps facenet-pytorch
    FACENET = None
pytestmark = pytest.mark.skipif(FACENET is None, reason='facenet-pytorch not installed')

SHIPPED = pathlib.Path(__file__).resolve().parents[2] / 'src' / 'emotion_runtime' / 'models' / \
    'face_detector'


def _images() -> dict:
    from skimage import data
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur(rng.integers(40, 200, (480, 640, 3), np.uint8), (9, 9), 0)
    face = data.astronaut()[40:200, 150:300]
    two = bg.copy()
    two[50:210, 60:210] = face
    two[250:410, 400:550] = cv2.flip(face, 1)
    small = bg.copy()
    small[200:280, 300:375] = cv2.resize(face, (75, 80))
    return {'astronaut': data.astronaut(), 'two faces': two, 'small face': small,
            'no face': data.coffee()}


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_onnx_detections_match_facenet_pytorch():
    import torch

    from emotion_perception.mtcnn_detection import MtcnnFaceDetector

    torch.set_num_threads(1)
    ref = FACENET.MTCNN(keep_all=True, min_face_size=40, device='cpu')
    ours = MtcnnFaceDetector(str(SHIPPED), min_face_size=40)
    for name, rgb in _images().items():
        want_boxes, want_probs, want_points = ref.detect(rgb, landmarks=True)
        boxes, points = ours.raw(rgb)
        want = [] if want_boxes is None else [
            (b, p, q) for b, p, q in zip(want_boxes, want_probs, want_points) if p >= 0.9]
        got = [(b[:4], b[4], q) for b, q in zip(boxes, points) if b[4] >= 0.9]
        assert len(got) == len(want), name
        for b, p, q in want:
            best = max(got, key=lambda g, b=b: _iou(g[0], b))
            assert _iou(best[0], b) > 0.85, name    # resize kernels differ slightly
            assert abs(best[1] - p) < 0.05, name
            side = b[2] - b[0]
            assert np.abs(best[2] - q).max() < 0.08 * side, name


def test_shipped_files_are_the_conversion_of_the_installed_wheel(tmp_path):
    """The three shipped files run like a fresh export (same outputs; bytes may differ between
    torch versions), and the wheel's weights are the ones its RECORD names."""
    import onnxruntime as ort

    for recorded, actual, _size in mtcnn_onnx.wheel_weights().values():
        assert recorded == actual
    mtcnn_onnx.export_mtcnn(tmp_path)
    rng = np.random.default_rng(1)
    for name, shape in (('pnet.onnx', (1, 3, 57, 83)), ('rnet.onnx', (4, 3, 24, 24)),
                        ('onet.onnx', (4, 3, 48, 48))):
        x = rng.standard_normal(shape).astype(np.float32)
        a = ort.InferenceSession(str(SHIPPED / name)).run(None, {'image': x})
        b = ort.InferenceSession(str(tmp_path / name)).run(None, {'image': x})
        for u, v in zip(a, b):
            np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5)
        assert hashlib.sha256((SHIPPED / name).read_bytes()).hexdigest()
