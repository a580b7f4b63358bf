"""Aligned face crops: the similarity transform, upright crops, the pipeline's use of landmarks."""
import cv2
import numpy as np
import pytest

from emotion_perception.face_alignment import (
    FER_TEMPLATE,
    align_face,
    apply_transform,
    fixed_rotation_transform,
    roll_limited_transform,
    similarity_transform,
)
from emotion_perception.face_detection import Detection, HaarFaceDetector
from emotion_perception.face_tracking import FaceTracker
from emotion_perception.node_params import FACE_PARAMS
from emotion_perception.vision_pipeline import FacePipeline, build_face_pipeline, crop_face


def _rotation(angle: float, scale: float, shift: tuple) -> np.ndarray:
    a = np.deg2rad(angle)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), shift[0]],
                     [scale * np.sin(a), scale * np.cos(a), shift[1]]])


@pytest.mark.parametrize('angle,scale,shift', [(0, 1.0, (0, 0)), (20, 0.7, (35, -12)),
                                               (-35, 2.5, (300, 210)), (170, 0.4, (-5, 90))])
def test_transform_maps_landmarks_onto_the_template(angle, scale, shift):
    rng = np.random.default_rng(abs(angle))
    target = FER_TEMPLATE * 112.0                     # template in px of a 112 px crop
    face = target + rng.normal(0, 1.5, target.shape)  # a face a little off the template
    src = apply_transform(_rotation(angle, scale, shift), face)
    m = similarity_transform(src, target)
    residual = np.hypot(*(apply_transform(m, src) - target).T)
    assert residual.max() < 1.0 + 3 * 1.5 and residual.mean() < 3.0
    exact = similarity_transform(apply_transform(_rotation(angle, scale, shift), target), target)
    assert np.abs(apply_transform(exact, apply_transform(_rotation(angle, scale, shift), target))
                  - target).max() < 1e-6


def _synthetic_face(side: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """A grey drawn face (eyes, nose, mouth at the template) on a gradient, and its landmarks."""
    img = np.tile(np.linspace(90, 170, side, dtype=np.float32), (side, 1)).astype(np.uint8)
    lm = FER_TEMPLATE * side
    cv2.ellipse(img, (side // 2, side // 2), (int(side * 0.36), int(side * 0.46)), 0, 0, 360,
                200, -1)
    for x, y in lm[:2]:
        cv2.circle(img, (int(x), int(y)), side // 16, 30, -1)
    cv2.circle(img, (int(lm[2, 0]), int(lm[2, 1])), side // 30, 90, -1)
    cv2.line(img, tuple(int(v) for v in lm[3]), tuple(int(v) for v in lm[4]), 40, side // 25)
    return img, lm


def test_aligned_crop_of_a_rotated_face_is_upright():
    img, lm = _synthetic_face()
    big = cv2.copyMakeBorder(img, 100, 100, 100, 100, cv2.BORDER_REPLICATE)
    lm = lm + 100
    upright = align_face(big, lm, size=96)
    rot = cv2.getRotationMatrix2D((200.0, 200.0), 25.0, 1.0)
    turned = cv2.warpAffine(big, rot, (400, 400), borderMode=cv2.BORDER_REPLICATE)
    aligned = align_face(turned, apply_transform(rot, lm), size=96)
    box = crop_face(turned, (100, 100, 200, 200), 0.0)
    box = cv2.resize(box, (96, 96), interpolation=cv2.INTER_AREA)

    def corr(a, b):
        return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])

    assert corr(aligned, upright) > 0.97
    assert corr(box, upright) < corr(aligned, upright) - 0.1
    # the eyes sit level in the aligned crop: the darkest pixels of each half share a row
    eyes = aligned[:60]
    ly = np.unravel_index(np.argmin(cv2.blur(eyes[:, :48], (7, 7))), (60, 48))[0]
    ry = np.unravel_index(np.argmin(cv2.blur(eyes[:, 48:], (7, 7))), (60, 48))[0]
    assert abs(int(ly) - int(ry)) <= 2
    # default size: about the face's own resolution
    assert align_face(turned, apply_transform(rot, lm)).shape == (200, 200)


class _Detector:
    def __init__(self, dets):
        self.dets = dets

    def detect(self, image, regions=None):
        return list(self.dets)


class _Bundle:
    def __init__(self):
        self.crops = []

    def encode_faces(self, crops):
        self.crops += crops
        return np.zeros((len(crops), 4), np.float32), np.zeros((len(crops), 2), np.float32)


def test_pipeline_aligns_on_landmarks_and_falls_back_to_the_box():
    img, lm = _synthetic_face()
    frame = np.full((480, 640, 3), 120, np.uint8)
    frame[100:300, 200:400] = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    marks = tuple(map(tuple, lm + (200, 100)))
    box = (210.0, 110.0, 180.0, 180.0)
    for landmarks, align, expect_aligned in ((marks, True, True), (None, True, False),
                                             (marks, False, False)):
        bundle = _Bundle()
        pipe = FacePipeline(_Detector([Detection(*box, 0.99, landmarks)]),
                            FaceTracker(min_hits=1), bundle, crop_margin=0.1,
                            align_faces=align)
        pipe.process(frame, 0.0)
        want = align_face(frame, marks) if expect_aligned else crop_face(frame, box, 0.1)
        assert len(bundle.crops) == 1 and np.array_equal(bundle.crops[0], want)
        assert pipe.aligned_crops == int(expect_aligned)


def test_haar_detections_have_no_landmarks_so_crops_stay_boxes():
    from skimage import data
    frame = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    bundle = _Bundle()
    det = HaarFaceDetector()
    pipe = FacePipeline(det, FaceTracker(min_hits=1), bundle, align_faces=True)
    result = pipe.process(frame, 0.0)
    assert len(result.tracks) == 1 and pipe.aligned_crops == 0
    assert np.array_equal(bundle.crops[0], crop_face(frame, result.tracks[0].box, 0.1))


def test_mtcnn_pipeline_from_parameters_aligns_the_astronaut():
    from skimage import data
    frame = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    params = {s.name: s.default for s in FACE_PARAMS}
    params.update(align_faces=True, min_hits=1, background_scan=False)
    pipe = build_face_pipeline(params, _Bundle())
    assert pipe.align_faces is True
    result = pipe.process(frame, 0.0)
    assert len(result.tracks) == 1 and pipe.aligned_crops == 1
    crop = pipe.bundle.crops[0]
    assert crop.shape[0] == crop.shape[1] >= 48
    params['align_faces'] = False
    assert build_face_pipeline(params).align_faces is False


def _angle(m: np.ndarray) -> float:
    return float(np.degrees(np.arctan2(m[1, 0], m[0, 0])))


@pytest.mark.parametrize('roll', [25.0, -25.0])
def test_roll_limited_transform_keeps_the_allowed_roll(roll):
    target = FER_TEMPLATE * 100.0
    src = apply_transform(_rotation(roll, 1.6, (40, 25)), target)
    full = similarity_transform(src, target)
    assert np.allclose(roll_limited_transform(src, target, 0.0), full)
    assert _angle(full) == pytest.approx(-roll, abs=1e-6)
    # 10 degrees of the roll stay in the crop, the other 15 are turned upright
    part = roll_limited_transform(src, target, 10.0)
    assert _angle(part) == pytest.approx(-np.sign(roll) * 15.0, abs=1e-6)
    for keep in (25.0, 40.0, 180.0):      # the whole roll kept: scale and shift only
        m = roll_limited_transform(src, target, keep)
        assert _angle(m) == pytest.approx(0.0, abs=1e-9)
        assert np.allclose(m, fixed_rotation_transform(src, target, 0.0))
    # scale and shift still fit: the landmarks' centre lands on the template's centre, and the
    # scale is the full fit's times cos(roll) (the least-squares scale of a rotated point set)
    m = roll_limited_transform(src, target, 180.0)
    assert np.allclose(apply_transform(m, src).mean(0), target.mean(0))
    assert np.hypot(m[0, 0], m[1, 0]) == pytest.approx(
        np.hypot(full[0, 0], full[1, 0]) * np.cos(np.radians(roll)), rel=1e-6)


def test_fixed_rotation_transform_recovers_a_scaled_shifted_face():
    target = FER_TEMPLATE * 64.0
    src = target * 2.5 + (120.0, 40.0)
    m = fixed_rotation_transform(src, target, 0.0)
    assert np.abs(apply_transform(m, src) - target).max() < 1e-9
    with pytest.raises(ValueError):
        fixed_rotation_transform(np.ones((5, 2)), target)


def test_aligned_crop_keeping_the_roll_is_the_rotated_face_unturned():
    img, lm = _synthetic_face()
    big = cv2.copyMakeBorder(img, 100, 100, 100, 100, cv2.BORDER_REPLICATE)
    lm = lm + 100
    rot = cv2.getRotationMatrix2D((200.0, 200.0), 8.0, 1.0)
    turned = cv2.warpAffine(big, rot, (400, 400), borderMode=cv2.BORDER_REPLICATE)
    marks = apply_transform(rot, lm)
    upright = align_face(turned, marks, size=96)
    kept = align_face(turned, marks, size=96, keep_roll_deg=180.0)
    box = cv2.resize(turned[100:300, 100:300], (96, 96), interpolation=cv2.INTER_AREA)

    def corr(a, b):
        return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])

    # the roll-keeping crop is the face's own (rolled) square; the upright one is turned
    assert corr(kept, box) > 0.95
    assert corr(kept, box) > corr(upright, box) + 0.02


def test_pipeline_passes_align_keep_roll_to_the_crop():
    img, lm = _synthetic_face()
    frame = np.full((480, 640, 3), 120, np.uint8)
    frame[100:300, 200:400] = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    rot = cv2.getRotationMatrix2D((300.0, 200.0), 12.0, 1.0)
    frame = cv2.warpAffine(frame, rot, (640, 480), borderMode=cv2.BORDER_REPLICATE)
    marks = tuple(map(tuple, apply_transform(rot, lm + (200, 100))))
    box = (210.0, 110.0, 180.0, 180.0)
    params = {s.name: s.default for s in FACE_PARAMS}
    assert params['align_keep_roll'] == 10.0
    for keep in (0.0, 5.0, 180.0):
        bundle = _Bundle()
        params.update(align_faces=True, align_keep_roll=keep, min_hits=1)
        pipe = build_face_pipeline(params, bundle)
        pipe.detector = _Detector([Detection(*box, 0.99, marks)])
        pipe.schedule = None
        pipe.process(frame, 0.0)
        assert np.array_equal(bundle.crops[0], align_face(frame, marks, keep_roll_deg=keep))
