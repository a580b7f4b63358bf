"""``emotion-export --int8-faces``: the vision graph quantised to int8, calibrated on training
faces and checked against the float model; and export's refusal of a fusion head built for
other encoders."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from emotion_training_helpers import LABELS3

from emotion_runtime.model_bundle import ModelBundle


def _export_args(trained, out, *extra):
    run = trained['out']
    return ['--vision', str(run / 'vision' / 'best.pt'), '--vocal', str(run / 'vocal' / 'best.pt'),
            '--fusion', str(run / 'fusion' / 'best.pt'), '--vision-tta', 'flip', *extra,
            '--out', str(out)]


def test_int8_vision_graph_is_quantised_and_agrees_with_the_float_model(trained, syn_data,
                                                                        tmp_path):
    from emotion_training.export import main as export_main
    from emotion_training.quantize import MIN_AGREEMENT, SEVEN_BIT, int8_weight_bound
    faces = syn_data / 'fer2013' / 'train'
    assert export_main(_export_args(trained, tmp_path / 'f')) == 0
    # 192 faces, 96 to calibrate and 96 to check: the tiny synthetic model has near-tied logits,
    # and calibrated on 48 its int8 graph flipped 4 of 48 (logits within 0.08 of the float's)
    assert export_main(_export_args(trained, tmp_path / 'q', '--int8-faces', str(faces),
                                    '--int8-count', '192')) == 0
    fb = ModelBundle.load(tmp_path / 'f', expected_labels=LABELS3)
    qb = ModelBundle.load(tmp_path / 'q', expected_labels=LABELS3)
    assert fb.manifest['vision']['quantization'] == 'none (float32)'
    q = qb.manifest['vision']['quantization']
    assert q['calibration_faces'] == 96 and q['check_vs_float']['faces'] == 96
    assert q['check_vs_float']['top1_agreement'] >= MIN_AGREEMENT
    assert q['weight_bound'] == int8_weight_bound(tmp_path / 'q' / 'vision_encoder.onnx')
    assert 0 < q['weight_bound'] <= SEVEN_BIT           # no overflow on x86 without VNNI
    ops = {n.op_type for n in onnx.load(str(tmp_path / 'q' / 'vision_encoder.onnx')).graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear'} <= ops
    assert not {'QuantizeLinear'} & {
        n.op_type for n in onnx.load(str(tmp_path / 'f' / 'vision_encoder.onnx')).graph.node}
    # Same interface and nearly the same answers on unseen faces through the node's own path.
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (64, 56), dtype=np.uint8) for _ in range(24)]
    (fe, fl), (qe, ql) = fb.encode_faces(crops), qb.encode_faces(crops)
    assert qe.shape == fe.shape and ql.shape == fl.shape and qe.dtype == np.float32
    assert (ql.argmax(1) == fl.argmax(1)).mean() >= 0.8
    assert np.abs(ql - fl).max() < 0.25 * (np.abs(fl).max() + 1e-6) + 0.5
    # The other graphs are untouched.
    for name in ('vocal_encoder.onnx', 'fusion_step.onnx'):
        assert qb.manifest['files'][name] == fb.manifest['files'][name]


def test_an_8bit_graph_halved_to_7_bits_keeps_its_answers(trained, syn_data, tmp_path):
    """``reduce_weight_range`` on a graph quantised with full 8-bit weights: every weight within
    +-64, the reference answers nearly unchanged, and ``emotion-export --from-bundle
    --vision-7bit-weights`` records it in the manifest."""
    from emotion_training.config import VISION_PREPROCESS
    from emotion_training.export import main as export_main
    from emotion_training.quantize import (
        SEVEN_BIT,
        calibration_faces,
        int8_weight_bound,
        kernel_agreement,
        quantize_onnx,
        reduce_weight_range,
    )
    assert export_main(_export_args(trained, tmp_path / 'f')) == 0
    faces = calibration_faces(syn_data / 'fer2013' / 'train', LABELS3, dict(VISION_PREPROCESS), 64)
    q8, q7 = tmp_path / 'q8.onnx', tmp_path / 'q7.onnx'
    quantize_onnx(tmp_path / 'f' / 'vision_encoder.onnx', q8, 'image', faces[:32], seven_bit=False)
    assert int8_weight_bound(q8) > SEVEN_BIT
    assert reduce_weight_range(q8, q7) > 0
    assert 0 < int8_weight_bound(q7) <= SEVEN_BIT
    ref8 = kernel_agreement(q8, faces[32:])
    ref7 = kernel_agreement(q7, faces[32:])
    assert ref8['inputs'] == ref7['inputs'] == 32
    # the integer kernels compute what the QDQ reference does: at most a rounding step of the
    # output's requantisation apart (~0.01 here, as a graph quantised to 7 bits directly),
    # where an overflow moves logits by tens (test_shipped_int8)
    assert ref7['top1_agreement'] == 1.0 and ref7['max_abs_diff'] < 0.05
    import onnxruntime as ort

    def reference(path):
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        return ort.InferenceSession(str(path), so).run(['logits'], {'image': faces[32:]})[0]
    a, b = reference(q8), reference(q7)
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.9
    assert np.abs(a - b).max() < 0.1 * np.abs(a).max() + 0.1
    # a bundle with such a graph, through the CLI
    src = tmp_path / 'src'
    import shutil
    shutil.copytree(tmp_path / 'f', src)
    shutil.copy(q8, src / 'vision_encoder.onnx')
    import json

    from emotion_runtime.model_bundle import sha256_of
    m = json.loads((src / 'manifest.json').read_text())
    m['files']['vision_encoder.onnx'] = sha256_of(src / 'vision_encoder.onnx')
    m['vision']['quantization'] = {'method': 'static int8, 8-bit weights'}
    (src / 'manifest.json').write_text(json.dumps(m))
    assert export_main(['--from-bundle', str(src), '--vision-7bit-weights', '--version', '9.9.9',
                        '--out', str(tmp_path / 'out')]) == 0
    out = ModelBundle.load(tmp_path / 'out', expected_labels=LABELS3)
    assert out.manifest['version'] == '9.9.9'
    assert out.manifest['vision']['quantization']['weight_bound'] <= SEVEN_BIT
    assert '7-bit' in out.manifest['vision']['quantization']['weights']
    assert int8_weight_bound(tmp_path / 'out' / 'vision_encoder.onnx') <= SEVEN_BIT
    for name in ('vocal_encoder.onnx', 'fusion_step.onnx'):
        assert out.manifest['files'][name] == m['files'][name]
    # a float bundle has nothing to halve
    assert export_main(['--from-bundle', str(tmp_path / 'f'), '--vision-7bit-weights',
                        '--out', str(tmp_path / 'bad')]) == 2


def test_int8_export_refuses_a_graph_that_disagrees_with_the_float_model(trained, syn_data,
                                                                         tmp_path, monkeypatch):
    from emotion_training import quantize
    from emotion_training.export import main as export_main
    monkeypatch.setattr(quantize, 'MIN_AGREEMENT', 1.01)   # no graph can pass
    with pytest.raises(RuntimeError, match='agrees with the float model'):
        export_main(_export_args(trained, tmp_path / 'q', '--int8-faces',
                                 str(syn_data / 'fer2013' / 'train'), '--int8-count', '32'))
    assert not (tmp_path / 'q' / 'manifest.json').exists()


def test_int8_export_names_a_folder_without_faces(trained, tmp_path):
    from emotion_training.export import main as export_main
    (tmp_path / 'empty').mkdir()
    with pytest.raises(SystemExit, match='no readable face images'):
        export_main(_export_args(trained, tmp_path / 'q', '--int8-faces', str(tmp_path / 'empty')))


def test_int8_export_skips_corrupt_calibration_faces(trained, syn_data, tmp_path, capfd):
    import shutil

    from emotion_training.export import main as export_main
    faces = tmp_path / 'faces'
    shutil.copytree(syn_data / 'fer2013' / 'train', faces)
    (faces / LABELS3[0] / 'broken.png').write_bytes(b'not a png at all')
    assert export_main(_export_args(trained, tmp_path / 'q', '--int8-faces', str(faces),
                                    '--int8-count', '10000')) == 0
    assert 'skipping a calibration face' in capfd.readouterr().err
    q = ModelBundle.load(tmp_path / 'q').manifest['vision']['quantization']
    n_good = sum(1 for p in faces.rglob('*.png')) - 1
    assert q['calibration_faces'] + q['check_vs_float']['faces'] == n_good


def test_export_refuses_a_fusion_head_trained_on_other_encoders(tmp_path):
    from emotion_training.config import VISION_PREPROCESS, VOCAL_PREPROCESS
    from emotion_training.export import export_bundle
    from emotion_training.models.vision_encoder import VisionEnsemble
    from emotion_training.testing import tiny_models
    vision, vocal, fusion = tiny_models(LABELS3)
    pair = VisionEnsemble([vision.config, vision.config])   # 2 x 16-d: the head takes 16
    with pytest.raises(ValueError, match='takes 16-d vision embeddings.*gives 32'):
        export_bundle(tmp_path / 'b', LABELS3, pair, dict(VISION_PREPROCESS), vocal,
                      dict(VOCAL_PREPROCESS), fusion)
    assert not (tmp_path / 'b' / 'manifest.json').exists()
