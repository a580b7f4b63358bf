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

Weights are kept to 7 bits (``|q| <= SEVEN_BIT``, onnxruntime's ``reduce_range``).  On x86 CPUs
without VNNI (AVX2, AVX-512 without VNNI) onnxruntime's uint8 x int8 kernels add each pair of
products into a saturating 16-bit sum (``vpmaddubsw``): 2 x 255 x 127 = 64,770 overflows 32,767,
so a graph with full 8-bit weights computes something else there than on a CPU with VNNI or on
ARM.  Measured on an AMD EPYC (AVX2) VM: bundle 0.8.0's 8-bit graph scored FER2013 PublicTest
accuracy 0.610 / UAR 0.596 against 0.649 / 0.639 for the same graph run as its QDQ reference
(onnxruntime optimisations off), 84 % top-1 agreement, logits off by up to 198; with 7-bit weights
(``reduce_weight_range``) 0.647 / 0.638, 99.6 % agreement, 0.18.  With 2 x 255 x 64 = 32,640 no
sum can overflow.  ``kernel_agreement`` measures the difference on the CPU it runs on.
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

from emotion_runtime.cpu import INT8_SAFE_WEIGHT_BOUND
from emotion_runtime.preprocess import face_to_input

from .datasets.common import UnreadableImageError, read_face
from .datasets.folders import load_image_folders

#: the least top-1 agreement with the float model an exported int8 vision graph may have
MIN_AGREEMENT = 0.95
#: faces per calibration batch fed to onnxruntime's MinMax calibrator
CALIBRATION_BATCH = 16
#: the largest |int8 weight| no x86 uint8 x int8 kernel can overflow with (2 x 255 x 64 < 2**15)
SEVEN_BIT = INT8_SAFE_WEIGHT_BOUND
#: the operators whose int8 weights (input 1) and int32 biases (input 2) onnxruntime runs as
#: integer products
_WEIGHTED_OPS = ('Conv', 'Gemm', 'MatMul')


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
                  calibration: np.ndarray, seven_bit: bool = True) -> None:
    """Write ``dst``: ``src`` with int8 weights (per channel; 7-bit unless ``seven_bit`` is
    false) and uint8 activations in QDQ form, activation ranges from ``calibration`` (MinMax)."""
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
                        per_channel=True, reduce_range=seven_bit, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)


def _weight_dequantizers(model) -> list[tuple]:
    """(op node, weight DequantizeLinear, bias DequantizeLinear or None) for every Conv/Gemm/
    MatMul of a QDQ ``model`` whose weight is a dequantised initializer."""
    inits = {i.name for i in model.graph.initializer}
    prod = {o: n for n in model.graph.node for o in n.output}

    def dq(name):
        n = prod.get(name)
        return n if n is not None and n.op_type == 'DequantizeLinear' and n.input[0] in inits \
            else None
    out = []
    for n in model.graph.node:
        if n.op_type in _WEIGHTED_OPS and len(n.input) > 1 and dq(n.input[1]) is not None:
            out.append((n, dq(n.input[1]), dq(n.input[2]) if len(n.input) > 2 else None))
    return out


def int8_weight_bound(path: str | pathlib.Path) -> int:
    """The largest |int8 weight| of the Conv/Gemm/MatMul nodes of a QDQ graph (0: none)."""
    import onnx  # noqa: PLC0415 - loads onnx
    from onnx import numpy_helper  # noqa: PLC0415
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    bound = 0
    for _, w, _ in _weight_dequantizers(model):
        q = numpy_helper.to_array(inits[w.input[0]])
        if q.dtype == np.int8 and q.size:
            bound = max(bound, int(np.abs(q.astype(np.int16)).max()))
    return bound


def reduce_weight_range(src: str | pathlib.Path, dst: str | pathlib.Path) -> int:
    """Write ``dst``: the QDQ graph ``src`` with every int8 weight halved to 7 bits (and its
    scale doubled), each int32 bias of those nodes likewise (its scale is the input's times the
    weight's), so that no x86 kernel can saturate; what ``quantize_onnx`` now does for a new
    export, for a graph quantised with 8-bit weights (the float model not needed).  Returns the
    number of weights halved.  Refuses weights with a nonzero zero point (not symmetric)."""
    import onnx  # noqa: PLC0415 - loads onnx
    from onnx import numpy_helper  # noqa: PLC0415
    model = onnx.load(str(src))
    inits = {i.name: i for i in model.graph.initializer}
    done: set[str] = set()

    def halve(dq, dtype) -> None:
        if dq.output[0] in done:
            return
        q = numpy_helper.to_array(inits[dq.input[0]])
        if q.dtype != dtype:
            raise ValueError(f'{src}: {dq.input[0]} is {q.dtype}, expected {np.dtype(dtype)}')
        if len(dq.input) > 2 and dq.input[2] and numpy_helper.to_array(inits[dq.input[2]]).any():
            raise ValueError(f'{src}: {dq.input[0]} has a nonzero zero point; only symmetric '
                             'weights can be halved')
        scale = numpy_helper.to_array(inits[dq.input[1]])
        half = np.round(q.astype(np.float64) / 2).astype(dtype)
        inits[dq.input[0]].CopyFrom(numpy_helper.from_array(half, dq.input[0]))
        inits[dq.input[1]].CopyFrom(numpy_helper.from_array((scale * 2).astype(scale.dtype),
                                                            dq.input[1]))
        done.add(dq.output[0])

    count = 0
    for _, w, b in _weight_dequantizers(model):
        if w.output[0] not in done:
            count += 1
        halve(w, np.int8)
        if b is not None:
            halve(b, np.int32)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return count


def kernel_agreement(path: str | pathlib.Path, x: np.ndarray, input_name: str = 'image',
                     output: str = 'logits') -> dict:
    """The graph at ``path`` run by onnxruntime's integer kernels on this CPU against the same
    graph run as its QDQ reference (graph optimisations off: float operators between
    QuantizeLinear/DequantizeLinear, what a CPU without overflow computes): top-1 agreement and
    largest output difference on inputs ``x``."""
    outs = []
    for level in (ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                  ort.GraphOptimizationLevel.ORT_DISABLE_ALL):
        so = ort.SessionOptions()
        so.graph_optimization_level = level
        sess = ort.InferenceSession(str(path), so, providers=['CPUExecutionProvider'])
        outs.append(np.concatenate([sess.run([output], {input_name: x[i:i + 256]})[0]
                                    for i in range(0, len(x), 256)]))
    got, ref = outs
    return {'inputs': int(len(x)), 'top1_agreement': float((got.argmax(1) == ref.argmax(1)).mean()),
            'max_abs_diff': float(np.abs(got - ref).max())}


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
            'weights': f'7-bit (|q| <= {SEVEN_BIT}, reduce_range): no overflow on x86 CPUs '
                       'without VNNI',
            'weight_bound': int8_weight_bound(path),
            'calibration_faces': half, 'check_vs_float': check}
