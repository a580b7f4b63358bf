"""A tiny, valid model bundle built without torch: ONNX graphs written with ``onnx.helper``.

Why: the ROS packages' tests, the launch tests and the benches need *a* bundle that loads and runs
exactly like a trained one (same manifest format and sha256 check, same ONNX input/output names,
shapes and dtypes as ``emotion-export`` writes), but they must not depend on torch or on the
training package.  ``make_tiny_bundle(out_dir)`` writes one in a few milliseconds (about 27 kB
with the default sizes); the weights are drawn from a seeded generator, so the files, and hence
their sha256, are the same on every run.

The graphs (opset 17, IR 8, like the exported ones):

* ``vision_encoder.onnx``: image [n,1,S,S] -> average pooled to a 4x4 grid -> embedding =
  tanh(grid @ W + b) [n,E] -> logits = embedding @ W2 + b2 [n,C].  The label depends on the
  face's brightness pattern.
* ``vocal_encoder.onnx``: logmel [n,1,M,T] -> per-band mean and standard deviation over time ->
  embedding = tanh(. @ W + b) [n,E] -> logits [n,C].
* ``fusion_step.onnx``: the exported fusion head's op sequence (per-modality LayerNorm, presence
  masks, linear + ReLU, one ONNX LSTM step with state in/out, linear head, softmax, valence/arousal
  = probabilities @ the manifest's table), so a bench of it costs what the exported one does.
  Inputs vision_embedding [n,Ev], vision_present [n], voice_embedding [n,Ea], voice_present [n],
  h [1,n,H], c [1,n,H]; outputs probabilities [n,C], valence_arousal [n,2], h_out [1,n,H],
  c_out [1,n,H].

    python -m emotion_test_tools.tiny_bundle OUT_DIR      (writes a bundle, prints its path)
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import pathlib
import sys
from typing import Any, Optional, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from emotion_runtime.labels import shipped_labels
from emotion_runtime.model_bundle import BUNDLE_FORMAT, ModelBundle, sha256_of
from emotion_runtime.preprocess import logmel_frames

__all__ = ['DEFAULT_LABELS', 'PROJECT_LABELS', 'VALENCE_AROUSAL', 'VISION_PREPROCESS',
           'VOCAL_PREPROCESS', 'add_tiny_voiceprint', 'make_tiny_bundle']

#: The project's seven labels, in their order (emotion_training.labels.DEFAULT_LABELS; a bundle
#: that emotion-export writes by default has these).
PROJECT_LABELS: tuple[str, ...] = ('angry', 'disgust', 'fear', 'happy', 'neutral', 'sad',
                                   'surprise')

#: The default labels of a tiny bundle: those of the shipped bundle's manifest, read from it
#: (``emotion_runtime.labels.shipped_labels``), so that a tiny bundle passes the nodes' default
#: ``expected_labels`` whatever the shipped bundle declares (0.9.0: all seven).
#: Pass ``labels=PROJECT_LABELS`` for a seven-label bundle.
DEFAULT_LABELS: tuple[str, ...] = shipped_labels()

#: [valence, arousal] per label: Russell & Mehrabian (1977), neutral = origin (the same table as
#: emotion_training.labels.VALENCE_AROUSAL; training/tests checks that they agree).
VALENCE_AROUSAL: dict[str, tuple[float, float]] = {
    'angry': (-0.51, 0.59), 'disgust': (-0.60, 0.35), 'fear': (-0.64, 0.60),
    'happy': (0.81, 0.51), 'neutral': (0.0, 0.0), 'sad': (-0.63, -0.27),
    'surprise': (0.40, 0.67), 'boredom': (-0.65, -0.62), 'contempt': (-0.55, 0.10),
}

#: Preprocessing sections as the training package writes them (emotion_training.config).
VISION_PREPROCESS = {'input_size': 48, 'channels': 1, 'mean': 0.5, 'std': 0.25}
VOCAL_PREPROCESS = {'sample_rate': 16000, 'n_mels': 64, 'n_fft': 512, 'win_length': 400,
                    'hop_length': 160, 'fmin': 50.0, 'fmax': 8000.0, 'window_seconds': 1.0,
                    'hop_seconds': 0.5,
                    'normalisation': {'type': 'global', 'mean': -6.0, 'std': 4.0}}

VISION_FILE, VOCAL_FILE, FUSION_FILE = 'vision_encoder.onnx', 'vocal_encoder.onnx', 'fusion_step.onnx'
FUSION_INPUTS = ['vision_embedding', 'vision_present', 'voice_embedding', 'voice_present', 'h', 'c']
FUSION_OUTPUTS = ['probabilities', 'valence_arousal', 'h_out', 'c_out']
OPSET = 17
IR_VERSION = 8
GRID = 4          # the vision graph pools the face to GRID x GRID cells
FLOAT = TensorProto.FLOAT


def _uniform(rng: np.random.Generator, shape: tuple, fan_in: int, gain: float = 1.0) -> np.ndarray:
    """torch.nn.Linear's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) * gain."""
    bound = gain / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def _init(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def _io(name: str, shape: Sequence[Any]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, FLOAT, list(shape))


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)],
                              producer_name='emotion_test_tools.tiny_bundle')
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def _encoder_head(prefix: str, x: str, d_in: int, emb: int, classes: int,
                  rng: np.random.Generator, nodes: list, inits: list) -> None:
    """embedding = tanh(x @ W + b); logits = embedding @ W2 + b2 (appended to nodes/inits)."""
    inits += [_init(f'{prefix}.w', _uniform(rng, (d_in, emb), d_in, gain=2.0)),
              _init(f'{prefix}.b', _uniform(rng, (emb,), d_in)),
              _init(f'{prefix}.head.w', _uniform(rng, (emb, classes), emb, gain=3.0)),
              _init(f'{prefix}.head.b', _uniform(rng, (classes,), emb))]
    nodes += [helper.make_node('MatMul', [x, f'{prefix}.w'], ['pre_mm']),
              helper.make_node('Add', ['pre_mm', f'{prefix}.b'], ['pre']),
              helper.make_node('Tanh', ['pre'], ['embedding']),
              helper.make_node('MatMul', ['embedding', f'{prefix}.head.w'], ['logits_mm']),
              helper.make_node('Add', ['logits_mm', f'{prefix}.head.b'], ['logits'])]


def vision_graph(size: int, emb: int, classes: int, rng: np.random.Generator) -> onnx.ModelProto:
    """image [n,1,size,size] -> (embedding [n,emb], logits [n,classes])."""
    if size % GRID:
        raise ValueError(f'input_size {size} must be a multiple of {GRID}')
    cell = size // GRID
    nodes = [helper.make_node('AveragePool', ['image'], ['grid'], kernel_shape=[cell, cell],
                              strides=[cell, cell]),
             helper.make_node('Flatten', ['grid'], ['cells'], axis=1)]
    inits: list = []
    _encoder_head('vision', 'cells', GRID * GRID, emb, classes, rng, nodes, inits)
    graph = helper.make_graph(nodes, 'tiny_vision_encoder', [_io('image', ['n', 1, size, size])],
                              [_io('embedding', ['n', emb]), _io('logits', ['n', classes])], inits)
    return _model(graph)


def vocal_graph(n_mels: int, frames: int, emb: int, classes: int,
                rng: np.random.Generator) -> onnx.ModelProto:
    """logmel [n,1,n_mels,frames] -> (embedding [n,emb], logits [n,classes])."""
    nodes = [helper.make_node('ReduceMean', ['logmel'], ['band_mean'], axes=[3], keepdims=0),
             helper.make_node('ReduceMean', ['logmel'], ['band_mean_k'], axes=[3], keepdims=1),
             helper.make_node('Sub', ['logmel', 'band_mean_k'], ['centred']),
             helper.make_node('Mul', ['centred', 'centred'], ['sq']),
             helper.make_node('ReduceMean', ['sq'], ['band_var'], axes=[3], keepdims=0),
             helper.make_node('Sqrt', ['band_var'], ['band_std']),
             helper.make_node('Concat', ['band_mean', 'band_std'], ['stats'], axis=2),
             helper.make_node('Flatten', ['stats'], ['flat'], axis=1)]
    inits: list = []
    _encoder_head('vocal', 'flat', 2 * n_mels, emb, classes, rng, nodes, inits)
    graph = helper.make_graph(nodes, 'tiny_vocal_encoder',
                              [_io('logmel', ['n', 1, n_mels, frames])],
                              [_io('embedding', ['n', emb]), _io('logits', ['n', classes])], inits)
    return _model(graph)


def fusion_graph(ev: int, ea: int, hidden: int, va: np.ndarray,
                 rng: np.random.Generator) -> onnx.ModelProto:
    """One step of the presence-masked LSTM fusion head (see the module docstring)."""
    classes = va.shape[0]
    d_in = ev + ea + 2
    h = hidden
    inits = [
        _init('axis1', np.array([1], np.int64)), _init('axis2', np.array([2], np.int64)),
        _init('index0', np.array(0, np.int64)),
        _init('vision_norm.w', np.ones(ev, np.float32)),
        _init('vision_norm.b', np.zeros(ev, np.float32)),
        _init('voice_norm.w', np.ones(ea, np.float32)),
        _init('voice_norm.b', np.zeros(ea, np.float32)),
        _init('proj.w', _uniform(rng, (d_in, h), d_in, gain=2.0)),
        _init('proj.b', _uniform(rng, (h,), d_in)),
        # ONNX LSTM layout: W [1, 4H, in], R [1, 4H, H], B [1, 8H], gates in the order i, o, f, c.
        _init('lstm.W', _uniform(rng, (1, 4 * h, h), h, gain=2.0)),
        _init('lstm.R', _uniform(rng, (1, 4 * h, h), h, gain=2.0)),
        _init('lstm.B', _uniform(rng, (1, 8 * h), h)),
        _init('head.w', _uniform(rng, (h, classes), h, gain=6.0)),
        _init('head.b', _uniform(rng, (classes,), h)),
        _init('va', va.astype(np.float32)),
    ]
    # The exporter's op sequence (batch-first [n,1,.] sequence of one step, LSTM on [1,n,.]), so
    # that a bench of this graph measures what the exported one costs.
    nodes = [
        helper.make_node('Unsqueeze', ['vision_embedding', 'axis1'], ['ve3']),
        helper.make_node('Unsqueeze', ['vision_present', 'axis1'], ['vp2']),
        helper.make_node('Unsqueeze', ['voice_embedding', 'axis1'], ['ae3']),
        helper.make_node('Unsqueeze', ['voice_present', 'axis1'], ['ap2']),
        helper.make_node('Unsqueeze', ['vp2', 'axis2'], ['vp3i']),
        helper.make_node('Cast', ['vp3i'], ['vp3'], to=FLOAT),
        helper.make_node('Unsqueeze', ['ap2', 'axis2'], ['ap3i']),
        helper.make_node('Cast', ['ap3i'], ['ap3'], to=FLOAT),
        helper.make_node('LayerNormalization', ['ve3', 'vision_norm.w', 'vision_norm.b'],
                         ['ve_n'], axis=-1),
        helper.make_node('Mul', ['ve_n', 'vp3'], ['ve_m']),
        helper.make_node('LayerNormalization', ['ae3', 'voice_norm.w', 'voice_norm.b'],
                         ['ae_n'], axis=-1),
        helper.make_node('Mul', ['ae_n', 'ap3'], ['ae_m']),
        helper.make_node('Concat', ['ve_m', 'vp3', 'ae_m', 'ap3'], ['step_input'], axis=-1),
        helper.make_node('MatMul', ['step_input', 'proj.w'], ['proj_mm']),
        helper.make_node('Add', ['proj.b', 'proj_mm'], ['proj_pre']),
        helper.make_node('Relu', ['proj_pre'], ['x']),
        helper.make_node('Transpose', ['x'], ['x_seq'], perm=[1, 0, 2]),
        helper.make_node('LSTM', ['x_seq', 'lstm.W', 'lstm.R', 'lstm.B', '', 'h', 'c'],
                         ['y', 'h_out', 'c_out'], hidden_size=h),
        helper.make_node('Squeeze', ['y', 'axis1'], ['y3']),
        helper.make_node('Transpose', ['y3'], ['out'], perm=[1, 0, 2]),
        helper.make_node('MatMul', ['out', 'head.w'], ['logits_mm']),
        helper.make_node('Add', ['head.b', 'logits_mm'], ['logits_seq']),
        helper.make_node('Gather', ['logits_seq', 'index0'], ['logits'], axis=1),
        helper.make_node('Softmax', ['logits'], ['probabilities'], axis=-1),
        helper.make_node('MatMul', ['probabilities', 'va'], ['valence_arousal']),
    ]
    graph = helper.make_graph(
        nodes, 'tiny_fusion_step',
        [_io('vision_embedding', ['n', ev]), _io('vision_present', ['n']),
         _io('voice_embedding', ['n', ea]), _io('voice_present', ['n']),
         _io('h', [1, 'n', h]), _io('c', [1, 'n', h])],
        [_io('probabilities', ['n', classes]), _io('valence_arousal', ['n', 2]),
         _io('h_out', [1, 'n', h]), _io('c_out', [1, 'n', h])], inits)
    return _model(graph)


def voiceprint_graph(n_mels: int, features: int, rng: np.random.Generator) -> onnx.ModelProto:
    """mel [n,T,n_mels] (power) -> features = tanh(log(mean over time + 1e-6) @ W + b) [n,F]:
    the interface of the exported voiceprint graph (``emotion_runtime.voiceprint``)."""
    nodes = [helper.make_node('ReduceMean', ['mel'], ['mel_mean'], axes=[1], keepdims=0),
             helper.make_node('Add', ['mel_mean', 'vp.eps'], ['mel_pos']),
             helper.make_node('Log', ['mel_pos'], ['mel_log']),
             helper.make_node('MatMul', ['mel_log', 'vp.w'], ['vp_mm']),
             helper.make_node('Add', ['vp_mm', 'vp.b'], ['vp_pre']),
             helper.make_node('Tanh', ['vp_pre'], ['features'])]
    inits = [_init('vp.eps', np.array([1e-6], np.float32)),
             _init('vp.w', _uniform(rng, (n_mels, features), n_mels, gain=0.5)),
             _init('vp.b', _uniform(rng, (features,), n_mels))]
    graph = helper.make_graph(nodes, 'tiny_voiceprint', [_io('mel', ['n', 't', n_mels])],
                              [_io('features', ['n', features])], inits)
    return _model(graph)


def add_tiny_voiceprint(bundle_dir: str | pathlib.Path, weight: float = 0.5, features: int = 8,
                        n_mels: int = 10, seed: int = 1) -> pathlib.Path:
    """Give a bundle (e.g. ``make_tiny_bundle``'s) a random voiceprint member in its voice decision
    (``vocal.voiceprint`` with weight ``weight``); returns the bundle directory."""
    out = pathlib.Path(bundle_dir)
    rng = np.random.default_rng(seed)
    onnx.save(voiceprint_graph(n_mels, features, rng), str(out / 'voiceprint.onnx'))
    manifest = json.loads((out / 'manifest.json').read_text(encoding='utf-8'))
    classes = len(manifest['labels'])
    manifest['vocal']['voiceprint'] = {
        'file': 'voiceprint.onnx', 'n_fft': 400, 'win_length': 400, 'hop_length': 160,
        'n_mels': n_mels, 'fmin': 0.0, 'fmax': 8000.0, 'gain_dbfs': -30.0, 'weight': weight,
        'normalisation': {'type': 'speaker', 'mean': [0.0] * features, 'std': [0.5] * features,
                          'prior_frames': 4.0},
        'head': {'weight': _uniform(rng, (classes, features), features, gain=8.0).tolist(),
                 'bias': [0.0] * classes}}
    manifest['files']['voiceprint.onnx'] = sha256_of(out / 'voiceprint.onnx')
    (out / 'manifest.json').write_text(json.dumps(manifest, indent=1) + '\n', encoding='utf-8')
    ModelBundle.load(out).voiceprint.session()
    return out


def make_tiny_bundle(out_dir: str | pathlib.Path, labels: Sequence[str] = DEFAULT_LABELS,
                     seed: int = 0, vocal_normalisation: Optional[dict] = None,
                     embedding_size: int = 16, hidden_size: int = 16,
                     version: str = '0.0.0-test') -> pathlib.Path:
    """Write a small, valid, random-weight bundle to ``out_dir`` (created if needed); returns it.

    ``vocal_normalisation``: another manifest normalisation section (e.g. a 'speaker' one).
    ``embedding_size`` (both encoders) and ``hidden_size`` (the fusion LSTM) size the graphs; the
    defaults match what the tests expect of a test bundle (16 and 16).  The bundle is loaded back
    with ``ModelBundle.load`` (sha256, fields) and every graph opened before it is returned.
    """
    labels = list(labels)
    unknown = [lab for lab in labels if lab not in VALENCE_AROUSAL]
    if unknown:
        raise ValueError(f'no valence/arousal for labels {unknown}; known: {sorted(VALENCE_AROUSAL)}')
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    classes = len(labels)
    vision_pre = dict(VISION_PREPROCESS)
    vocal_pre = json.loads(json.dumps(VOCAL_PREPROCESS))
    if vocal_normalisation is not None:
        vocal_pre['normalisation'] = dict(vocal_normalisation)
    size, n_mels, frames = int(vision_pre['input_size']), int(vocal_pre['n_mels']), \
        logmel_frames(vocal_pre)
    va = np.array([VALENCE_AROUSAL[k] for k in labels], np.float32)
    onnx.save(vision_graph(size, embedding_size, classes, rng), str(out / VISION_FILE))
    onnx.save(vocal_graph(n_mels, frames, embedding_size, classes, rng), str(out / VOCAL_FILE))
    onnx.save(fusion_graph(embedding_size, embedding_size, hidden_size, va, rng),
              str(out / FUSION_FILE))
    note = 'random weights for tests, built without torch (emotion_test_tools.tiny_bundle)'
    manifest: dict[str, Any] = {
        'format': BUNDLE_FORMAT,
        'version': version,
        'created': _dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds'),
        'labels': labels,
        'vision': dict(vision_pre, file=VISION_FILE, embedding_size=embedding_size,
                       input='image [N,1,H,W] float32 = preprocess.face_to_input',
                       outputs=['embedding', 'logits'],
                       architecture={'tiny': f'avgpool {GRID}x{GRID} + linear/tanh + linear',
                                     'num_classes': classes, 'embedding_size': embedding_size},
                       test_time_augmentation='none', quantization='none (float32)'),
        'vocal': dict(vocal_pre, file=VOCAL_FILE, embedding_size=embedding_size, frames=frames,
                      input='logmel [N,1,n_mels,frames] float32 = ModelBundle.voice_input',
                      outputs=['embedding', 'logits'],
                      architecture={'tiny': 'band mean/std over time + linear/tanh + linear',
                                    'num_classes': classes, 'embedding_size': embedding_size}),
        'fusion': {'file': FUSION_FILE, 'hidden_size': hidden_size, 'num_layers': 1,
                   'inputs': FUSION_INPUTS, 'outputs': FUSION_OUTPUTS,
                   'architecture': {'vision_dim': embedding_size, 'voice_dim': embedding_size,
                                    'num_classes': classes, 'hidden_size': hidden_size,
                                    'num_layers': 1},
                   'state_shape': '[num_layers, N, hidden_size]'},
        'valence_arousal': {k: [float(v) for v in VALENCE_AROUSAL[k]] for k in labels},
        'valence_arousal_source': ('Russell & Mehrabian (1977) pleasure/arousal ratings of '
                                   'emotion terms; neutral = (0, 0)'),
        'training': {'note': note, 'seed': seed},
        'metrics': {},
        'export': {'opset': OPSET, 'generator': 'emotion_test_tools.tiny_bundle'},
        'files': {name: sha256_of(out / name) for name in (VISION_FILE, VOCAL_FILE, FUSION_FILE)},
    }
    (out / 'manifest.json').write_text(json.dumps(manifest, indent=1) + '\n', encoding='utf-8')
    loaded = ModelBundle.load(out, expected_labels=labels)
    for key in ('vision', 'vocal', 'fusion'):
        loaded.session(key)
    return out


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(prog='python -m emotion_test_tools.tiny_bundle',
                                description=__doc__.split('\n\n')[0])
    p.add_argument('out', type=pathlib.Path, help='bundle directory to write')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--embedding-size', type=int, default=16)
    p.add_argument('--hidden-size', type=int, default=16)
    a = p.parse_args(argv)
    out = make_tiny_bundle(a.out, seed=a.seed, embedding_size=a.embedding_size,
                           hidden_size=a.hidden_size)
    print(out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
