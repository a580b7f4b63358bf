"""MTCNN (P-, R-, O-Net) from the facenet-pytorch wheel to the ONNX files face_node ships.

Why a conversion and not a run-time dependency: facenet-pytorch needs torch (and torchvision),
which the robot's nodes never import; its three small nets (MIT licence, ~2 MB of weights) are
exported once to ONNX and run with onnxruntime by ``emotion_perception.mtcnn_detection``.
facenet-pytorch is an optional training-side package (``pip install --no-deps facenet-pytorch``).

    python training/scripts/convert_mtcnn.py [--out src/emotion_runtime/models/face_detector]

torchvision, which facenet-pytorch's package ``__init__`` imports for its NMS, is not in this
venv: ``import_facenet`` gives it a small stand-in (greedy NMS in numpy) when it is missing, so
the nets' definitions load and facenet-pytorch's own ``MTCNN.detect`` can be run as a reference.
"""
from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import sys
import types
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

__all__ = ['import_facenet', 'export_mtcnn', 'wheel_weights', 'main']

DEFAULT_OUT = Path(__file__).resolve().parents[2] / 'src' / 'emotion_runtime' / 'models' / \
    'face_detector'
OPSET = 17


def torchvision_stub() -> None:
    """Just what facenet-pytorch's detect_face uses (batched_nms, to_tensor): torchvision is not in
    this venv, so a small greedy NMS stands in (conversion checks and measurements only)."""

    def batched_nms(boxes, scores, idxs, iou_threshold):
        if boxes.numel() == 0:
            return torch.zeros(0, dtype=torch.int64)
        b = boxes.detach().cpu().double().numpy()
        b = b + (idxs.cpu().double().numpy() * (b.max() + 1))[:, None]
        order = np.argsort(-scores.detach().cpu().numpy(), kind='stable')
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        keep = []
        while order.size:
            i, rest = order[0], order[1:]
            keep.append(i)
            w = np.clip(np.minimum(b[i, 2], b[rest, 2]) - np.maximum(b[i, 0], b[rest, 0]), 0, None)
            h = np.clip(np.minimum(b[i, 3], b[rest, 3]) - np.maximum(b[i, 1], b[rest, 1]), 0, None)
            inter = w * h
            order = rest[inter / (area[i] + area[rest] - inter) <= iou_threshold]
        return torch.as_tensor(keep, dtype=torch.int64)

    tv = types.ModuleType('torchvision')
    tv.ops = types.ModuleType('torchvision.ops')
    tv.ops.boxes = types.ModuleType('torchvision.ops.boxes')
    tv.ops.boxes.batched_nms = batched_nms
    tv.transforms = types.ModuleType('torchvision.transforms')
    tv.transforms.functional = types.ModuleType('torchvision.transforms.functional')
    tv.transforms.functional.to_tensor = lambda a: torch.as_tensor(a).permute(2, 0, 1) / 255.0
    for name, mod in (('torchvision', tv), ('torchvision.ops', tv.ops),
                      ('torchvision.ops.boxes', tv.ops.boxes),
                      ('torchvision.transforms', tv.transforms),
                      ('torchvision.transforms.functional', tv.transforms.functional)):
        sys.modules.setdefault(name, mod)


def import_facenet() -> types.ModuleType:
    """facenet_pytorch.models.mtcnn (PNet, RNet, ONet, MTCNN); ImportError when not installed."""
    try:
        import torchvision  # noqa: F401, PLC0415 - optional; the stand-in replaces it
    except ImportError:
        torchvision_stub()
    from facenet_pytorch.models import mtcnn  # noqa: PLC0415 - optional training-side package
    return mtcnn


def wheel_weights() -> dict:
    """{path in the wheel: (sha256 hex from the wheel's RECORD, sha256 hex of the installed
    file, bytes)} for the three .pt files; the two hashes must agree."""
    dist = metadata.distribution('facenet-pytorch')
    out = {}
    for row in csv.reader((dist.read_text('RECORD') or '').splitlines()):
        if len(row) < 3 or not row[0].endswith('.pt'):
            continue
        algo, _, b64 = row[1].partition('=')
        assert algo == 'sha256', row
        recorded = base64.urlsafe_b64decode(b64 + '=' * (-len(b64) % 4)).hex()
        actual = hashlib.sha256(Path(dist.locate_file(row[0])).read_bytes()).hexdigest()
        out[row[0]] = (recorded, actual, int(row[2]))
    return out


def export_mtcnn(out_dir: Path) -> dict:
    """Writes pnet.onnx (dynamic N, H, W), rnet.onnx and onet.onnx (dynamic N); returns
    {file name: sha256 hex}.  Inputs: float32 NCHW RGB, (pixel - 127.5) / 128."""
    mtcnn = import_facenet()
    out_dir.mkdir(parents=True, exist_ok=True)
    nets = [('pnet', mtcnn.PNet(), (1, 3, 48, 64), ['reg', 'prob'],
             {'image': {0: 'n', 2: 'h', 3: 'w'}, 'reg': {0: 'n', 2: 'oh', 3: 'ow'},
              'prob': {0: 'n', 2: 'oh', 3: 'ow'}}),
            ('rnet', mtcnn.RNet(), (2, 3, 24, 24), ['reg', 'prob'],
             {'image': {0: 'n'}, 'reg': {0: 'n'}, 'prob': {0: 'n'}}),
            ('onet', mtcnn.ONet(), (2, 3, 48, 48), ['reg', 'landmarks', 'prob'],
             {'image': {0: 'n'}, 'reg': {0: 'n'}, 'landmarks': {0: 'n'}, 'prob': {0: 'n'}})]
    hashes = {}
    for name, net, shape, outputs, axes in nets:
        net.eval()
        path = out_dir / f'{name}.onnx'
        with torch.no_grad():
            torch.onnx.export(net, (torch.zeros(shape),), str(path), input_names=['image'],
                              output_names=outputs, dynamic_axes=axes, opset_version=OPSET,
                              dynamo=False, do_constant_folding=True)
        _check(net, path, shape)
        hashes[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def _check(net: torch.nn.Module, path: Path, shape: tuple) -> None:
    """onnxruntime's outputs equal torch's on random input (another size for PNet)."""
    import onnxruntime as ort  # noqa: PLC0415 - only when exporting

    sess = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    test_shape = (3, 3, 61, 97) if shape[2] != shape[3] else (5,) + shape[1:]
    x = torch.randn(test_shape)
    with torch.no_grad():
        want = [t.numpy() for t in net(x)]
    got = sess.run(None, {'image': x.numpy()})
    for a, b in zip(want, got):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', type=Path, default=DEFAULT_OUT, help='output folder')
    a = ap.parse_args(argv)
    version = metadata.version('facenet-pytorch')
    print(f'facenet-pytorch {version}')
    for path, (recorded, actual, size) in wheel_weights().items():
        status = 'ok' if recorded == actual else 'MISMATCH'
        print(f'  {path}  {size} bytes  sha256 {recorded}  (RECORD vs file: {status})')
        if recorded != actual:
            return 1
    for name, digest in export_mtcnn(a.out).items():
        print(f'  {a.out / name}  {(a.out / name).stat().st_size} bytes  sha256 {digest}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
