"""The shipped int8 vision graph computes the same on this CPU as its QDQ reference: 7-bit
weights, so that x86 CPUs without VNNI (whose uint8 x int8 kernels overflow 16-bit pair sums
with 8-bit weights) give the answers the model card reports."""
from __future__ import annotations

import numpy as np

from emotion_runtime.model_bundle import ModelBundle, default_bundle_path
from emotion_runtime.preprocess import face_to_input
from emotion_training.datasets.common import read_face
from emotion_training.datasets.folders import load_image_folders
from emotion_training.quantize import SEVEN_BIT, int8_weight_bound, kernel_agreement


def test_shipped_vision_weights_fit_in_seven_bits():
    b = ModelBundle.load(None)
    q = b.manifest['vision']['quantization']
    path = default_bundle_path() / 'vision_encoder.onnx'
    assert isinstance(q, dict) and q['weight_bound'] == int8_weight_bound(path)
    assert 0 < int8_weight_bound(path) <= SEVEN_BIT


def test_shipped_vision_graph_agrees_with_its_reference_on_this_cpu(data_root):
    """On real faces (FER2013 PublicTest; 0.8.0's 8-bit graph agreed on 84 % of them on an AVX2
    CPU, logits off by up to 198)."""
    b = ModelBundle.load(None)
    samples = load_image_folders(data_root / 'fer2013' / 'validation', list(b.labels))
    rng = np.random.default_rng(0)
    picked = [samples[i] for i in rng.choice(len(samples), 400, replace=False)]
    x = np.stack([face_to_input(read_face(s.path), b.manifest['vision'])
                  for s in picked]).astype(np.float32)
    check = kernel_agreement(default_bundle_path() / 'vision_encoder.onnx', x)
    assert check['inputs'] == 400
    assert check['top1_agreement'] >= 0.98, check
    assert check['max_abs_diff'] < 1.0, check
