"""Static int8 quantisation of the vision graph (onnxruntime QDQ), calibrated on training faces.

Why: the face encoder runs for every tracked face in every frame on the robot's CPU, with a
2 ms budget per face.  int8 convolutions run about 3x faster than float32 in onnxruntime
(measured on the 2-core development VM: the two-member ensemble with mirror TTA went from 3.4 to
1.15 ms per face) with the same holdout accuracy, which buys mirror TTA, or another ensemble
member, inside the budget.  Static quantisation (activation ranges fixed from calibration faces)
rather than dynamic: onnxruntime's dynamic mode quantises MatMul/Gemm but leaves the
convolutions, where the time goes, in float.

The quantised graph keeps the float graph's inputs and outputs (``image`` float32 in,
``embedding``/``logits`` float32 out), so nothing downstream changes.  Export checks the int8
graph against the float model on faces it was not calibrated on and refuses a bundle whose top-1
agreement is below ``MIN_AGREEMENT``.
"""
from __future__ import annotations

import pathlib
import random
import sys
import tempfile
from typing import Iterator, Sequence

import numpy as np
import onnxruntime as ort
import torch
from tqdm import tqdm

from emotion_runtime.preprocess import face_to_input

from .datasets.common import UnreadableImageError, read_face
from .datasets.folders import load_image_folders

#: the least top-1 agreement with the float model an exported int8 vision graph may have
MIN_AGREEMENT = 0.95
#: faces per calibration batch fed to onnxruntime's MinMax calibrator
CALIBRATION_BATCH = 16


def calibration_faces(faces_dir: str | pathlib.Path, labels: Sequence[str], vision_pre: dict,
                      n: int = 512, seed: int = 0) -> np.ndarray:
    """Up to ``n`` faces drawn at random from a class-folder tree, preprocessed as the robot
    does ([n, 1, S, S] float32).  Use training faces: the held-out ones are for measuring.
    Unreadable files are skipped with a message (they cannot calibrate anything)."""
    samples = load_image_folders(faces_dir, labels)
    rng = random.Random(seed)
    picked = rng.sample(samples, min(n, len(samples)))
    faces = []
    for s in tqdm(picked, desc='calibration faces', file=sys.stderr, leave=False, mininterval=2):
        try:
            faces.append(face_to_input(read_face(s.path), vision_pre))
        except UnreadableImageError as exc:
            print(f'emotion-export: skipping a calibration face: {exc}', file=sys.stderr)
    if len(faces) < 2:
        raise SystemExit(f'no readable face images for the labels {list(labels)} below '
                         f'{faces_dir} (expected one folder per class, at least 2 images) to '
                         'calibrate the int8 vision graph')
    return np.stack(faces).astype(np.float32)


def _batches(x: np.ndarray, input_name: str) -> Iterator[dict[str, np.ndarray]]:
    for i in range(0, len(x), CALIBRATION_BATCH):
        yield {input_name: x[i:i + CALIBRATION_BATCH]}


def quantize_onnx(src: pathlib.Path, dst: pathlib.Path, input_name: str,
                  calibration: np.ndarray) -> None:
    """Write ``dst``: ``src`` with int8 weights (per channel) and uint8 activations in QDQ form,
    activation ranges from ``calibration`` (MinMax)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static  # noqa: PLC0415 - loads onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process  # noqa: PLC0415 - loads onnx

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = _batches(calibration, input_name)

        def get_next(self):
            return next(self._it, None)

    with tempfile.TemporaryDirectory() as tmp:
        pre = pathlib.Path(tmp) / 'pre.onnx'
        # Shape inference and graph clean-up first, as onnxruntime recommends for static mode.
        quant_pre_process(str(src), str(pre))
        quantize_static(str(pre), str(dst), _Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)


def agreement(model: torch.nn.Module, onnx_path: pathlib.Path, x: np.ndarray) -> dict:
    """Top-1 agreement and largest logit difference of the ONNX graph against the float torch
    ``model`` on faces ``x``."""
    sess = ort.InferenceSession(str(onnx_path), providers=['CPUExecutionProvider'])
    got = np.concatenate([sess.run(['logits'], {'image': x[i:i + 256]})[0]
                          for i in range(0, len(x), 256)])
    model.eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(x))[1].numpy()
    return {'faces': int(len(x)),
            'top1_agreement': float((got.argmax(1) == ref.argmax(1)).mean()),
            'max_abs_logit_diff': float(np.abs(got - ref).max())}


def quantize_vision_graph(vision: torch.nn.Module, path: pathlib.Path, faces: np.ndarray) -> dict:
    """Replace the float vision graph at ``path`` by its int8 form, calibrated on the first half
    of ``faces`` and checked against ``vision`` on the second; what the manifest records."""
    if len(faces) < 2:
        raise ValueError('int8 quantisation needs at least two faces (calibration + check)')
    half = len(faces) // 2
    float_path = path.with_name(path.stem + '_float.onnx')
    path.replace(float_path)
    try:
        quantize_onnx(float_path, path, 'image', faces[:half])
    finally:
        float_path.unlink(missing_ok=True)
    check = agreement(vision, path, faces[half:])
    if check['top1_agreement'] < MIN_AGREEMENT:
        raise RuntimeError(f'{path}: the int8 vision graph agrees with the float model on '
                           f'{check["top1_agreement"]:.3f} of {check["faces"]} faces, below '
                           f'{MIN_AGREEMENT}; export without int8 quantisation')
    return {'method': 'static int8, QDQ (onnxruntime.quantization): per-channel int8 weights, '
                      'uint8 activations, MinMax ranges',
            'calibration_faces': half, 'check_vs_float': check}
