"""``emotion-export``: write a model bundle (manifest.json + three ONNX files, sha256 of each).

The bundle is what the robot loads (``emotion_runtime.model_bundle``).  Export checks that
onnxruntime reproduces torch on random inputs before the manifest is written, and the manifest is
verified by loading it back, so a bundle that leaves this command is known to load.
``--int8-faces`` quantises the vision graph to int8 and checks it against the float model on
faces it was not calibrated on (quantize.py).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import pathlib
import sys
import warnings
from typing import Any, Optional, Sequence

import numpy as np
import onnxruntime as ort
import torch

from emotion_runtime.model_bundle import BUNDLE_FORMAT, BundleError, ModelBundle, sha256_of
from emotion_runtime.preprocess import log_floor, logmel_frames, noise_subtraction_problem
from emotion_training.models.fusion_model import FUSION_INPUTS, FUSION_OUTPUTS, FusionModel, FusionStep
from emotion_training.models.vision_encoder import VisionEncoder, VisionEnsemble
from emotion_training.models.vocal_encoder import VocalEncoder, VocalEnsemble

from .encoder_checkpoint import load_vision, load_vocal
from .engine import load_checkpoint
from .labels import VA_SOURCE, va_table
from .quantize import calibration_faces, quantize_vision_graph

VISION_FILE, VOCAL_FILE, FUSION_FILE = 'vision_encoder.onnx', 'vocal_encoder.onnx', 'fusion_step.onnx'
OPSET = 17
TOLERANCE = 1e-3
#: the vocal preprocessing keys that decide what one window's log-mel input is
VOCAL_FRONT_END = ('sample_rate', 'n_mels', 'n_fft', 'win_length', 'hop_length', 'fmin', 'fmax',
                   'window_seconds')


def _export(module: torch.nn.Module, args: tuple, path: pathlib.Path, inputs: list[str],
            outputs: list[str], dynamic: dict) -> None:
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        # The TorchScript exporter: fast (<1 s), deterministic, handles nn.LSTM with state I/O.
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
                          do_constant_folding=True)


def _check(module: torch.nn.Module, path: pathlib.Path, feeds: dict[str, np.ndarray],
           outputs: list[str]) -> float:
    """Max |torch - onnxruntime| over all outputs; raises if above TOLERANCE."""
    sess = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    got = sess.run(outputs, feeds)
    with torch.no_grad():
        ref = module(*[torch.from_numpy(v) for v in feeds.values()])
    diff = max(float(np.abs(r.numpy() - g).max()) for r, g in zip(ref, got))
    if diff > TOLERANCE:
        raise RuntimeError(f'{path}: onnxruntime differs from torch by {diff:.3g} > {TOLERANCE}')
    return diff


def _export_fusion(fusion: FusionModel, path: pathlib.Path, rng: np.random.Generator) -> float:
    """Export one fusion step (state in/out, N dynamic) to ``path``; returns its torch vs
    onnxruntime difference (``_check``)."""
    step = FusionStep(fusion).eval()
    ev, ea = fusion.config['vision_dim'], fusion.config['voice_dim']
    L, H = fusion.num_layers, fusion.hidden_size

    def feeds(n: int) -> dict[str, np.ndarray]:
        # Non-zero state so the exporter cannot fold the zero initial state into constants.
        return {'vision_embedding': rng.standard_normal((n, ev)).astype(np.float32),
                'vision_present': (rng.random(n) > 0.3).astype(np.float32),
                'voice_embedding': rng.standard_normal((n, ea)).astype(np.float32),
                'voice_present': (rng.random(n) > 0.3).astype(np.float32),
                'h': rng.standard_normal((L, n, H)).astype(np.float32) * 0.1,
                'c': rng.standard_normal((L, n, H)).astype(np.float32) * 0.1}
    dyn = {k: {0: 'n'} for k in FUSION_INPUTS[:4] + FUSION_OUTPUTS[:2]}
    dyn.update({k: {1: 'n'} for k in ('h', 'c', 'h_out', 'c_out')})
    _export(step, tuple(torch.from_numpy(v) for v in feeds(2).values()), path,
            FUSION_INPUTS, FUSION_OUTPUTS, dyn)
    return _check(step, path, feeds(3), FUSION_OUTPUTS)


def _export_vocal(vocal: torch.nn.Module, vocal_pre: dict, path: pathlib.Path,
                  rng: np.random.Generator) -> float:
    """Export the vocal encoder (N dynamic) to ``path``; returns its torch vs onnxruntime
    difference (``_check``)."""
    frames = logmel_frames(vocal_pre)
    a = rng.standard_normal((2, 1, int(vocal_pre['n_mels']), frames)).astype(np.float32)
    _export(vocal, (torch.from_numpy(a),), path, ['logmel'], ['embedding', 'logits'],
            {'logmel': {0: 'n'}, 'embedding': {0: 'n'}, 'logits': {0: 'n'}})
    return _check(vocal, path, {'logmel': rng.standard_normal(
        (3, 1, int(vocal_pre['n_mels']), frames)).astype(np.float32)}, ['embedding', 'logits'])


def _export_vision(vision: torch.nn.Module, vision_pre: dict, path: pathlib.Path,
                   rng: np.random.Generator, int8_faces: Optional[np.ndarray] = None
                   ) -> tuple[dict, float]:
    """Export a vision encoder (or ensemble) to ``path``, checked against torch, quantised to
    int8 on ``int8_faces`` where given; returns the manifest's vision section and the largest
    torch-vs-onnxruntime difference of the float graph."""
    size = int(vision_pre['input_size'])
    x = rng.standard_normal((2, 1, size, size)).astype(np.float32)
    _export(vision, (torch.from_numpy(x),), path, ['image'], ['embedding', 'logits'],
            {'image': {0: 'n'}, 'embedding': {0: 'n'}, 'logits': {0: 'n'}})
    diff = _check(vision, path, {'image': rng.standard_normal(
        (3, 1, size, size)).astype(np.float32)}, ['embedding', 'logits'])
    quantization = None
    if int8_faces is not None:
        quantization = quantize_vision_graph(vision, path, int8_faces)
    section = {'file': VISION_FILE, 'input_size': size,
               'channels': int(vision_pre.get('channels', 1)),
               'mean': float(vision_pre['mean']), 'std': float(vision_pre['std']),
               'embedding_size': int(vision.config['embedding_size']),
               'input': 'image [N,1,H,W] float32 = preprocess.face_to_input',
               'outputs': ['embedding', 'logits'], 'architecture': vision.config,
               'test_time_augmentation': ('mean of the face and its mirror image, inside '
                                          'the graph' if vision.flip_tta else 'none'),
               'quantization': quantization or 'none (float32)'}
    return section, diff


def _vocal_section(vocal: torch.nn.Module, vocal_pre: dict) -> dict:
    """The manifest's ``vocal`` section of an exported vocal encoder."""
    section = dict(vocal_pre)
    section.update({'file': VOCAL_FILE, 'embedding_size': int(vocal.config['embedding_size']),
                    'frames': logmel_frames(vocal_pre),
                    'input': ('logmel [N,1,n_mels,frames] float32 = '
                              'ModelBundle.voice_input (preprocess.logmel, normalised as '
                              '"normalisation" says; type speaker: per speaker, see '
                              'speaker_calibration.py)'),
                    'outputs': ['embedding', 'logits'], 'architecture': vocal.config})
    return section


def _fusion_section(fusion: FusionModel) -> dict:
    """The manifest's ``fusion`` section of an exported fusion head."""
    cfg = {k: v for k, v in fusion.config.items() if k != 'va_table'}
    return {'file': FUSION_FILE, 'hidden_size': fusion.hidden_size,
            'num_layers': fusion.num_layers, 'inputs': FUSION_INPUTS, 'outputs': FUSION_OUTPUTS,
            'architecture': cfg, 'state_shape': '[num_layers, N, hidden_size]'}


def graft_vision_head(src: pathlib.Path, dst: pathlib.Path, weight: np.ndarray,
                      bias: np.ndarray) -> None:
    """Write ``src``'s vision graph to ``dst`` with ``logits = embedding @ weight.T + bias``.

    The encoders' logits are already a linear map of the exported embedding (each member's head
    is linear, members and mirror views are averaged), so a head fitted on the embedding
    (``vision_head.py``) replaces them exactly: the old logits nodes are dropped, everything
    up to ``embedding`` is kept byte for byte, int8 nodes included."""
    import onnx  # noqa: PLC0415 - export only
    from onnx import helper, numpy_helper  # noqa: PLC0415
    weight = np.asarray(weight, np.float32)
    bias = np.asarray(bias, np.float32)
    model = onnx.load(str(src))
    g = model.graph
    emb = next((o for o in g.output if o.name == 'embedding'), None)
    if emb is None or not any(o.name == 'logits' for o in g.output):
        raise ValueError(f'{src}: a vision graph has outputs embedding and logits')
    kept = [n for n in g.node if 'logits' not in n.output]
    w_name, b_name, mm = 'vision_head/weight', 'vision_head/bias', 'vision_head/matmul'
    kept += [helper.make_node('MatMul', ['embedding', w_name], [mm], name='vision_head/MatMul'),
             helper.make_node('Add', [mm, b_name], ['logits'], name='vision_head/Add')]
    # keep only what the outputs need (the old head's nodes and weights go)
    del g.node[:]
    g.node.extend(kept)
    live = _live_nodes(g, [o.name for o in g.output])
    used = {i for n in live for i in n.input}
    inits = [t for t in g.initializer if t.name in used]
    inits += [numpy_helper.from_array(np.ascontiguousarray(weight.T), w_name),
              numpy_helper.from_array(bias, b_name)]
    del g.node[:]
    g.node.extend(live)
    del g.initializer[:]
    g.initializer.extend(inits)
    logits = next(o for o in g.output if o.name == 'logits')
    logits.type.tensor_type.shape.dim[1].dim_value = int(weight.shape[0])
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


#: the node of a vocal graph whose output ``logits`` is the mean of its decision members'
DECISION_MEAN = 'decision/Mean'


def add_decision_members(src: pathlib.Path, members: Sequence[pathlib.Path],
                         dst: pathlib.Path) -> int:
    """Write ``src``'s encoder graph to ``dst`` with ``logits`` = the mean of its own logits and
    those of the ``members`` graphs (same input and label order); ``embedding`` stays ``src``'s.
    A ``src`` whose logits are such a mean already keeps its parts, and the members join them
    (the mean over every part).  Returns the number of parts ``src``'s logits averaged (1 for a
    plain encoder).

    What it is for: a fusion head reads the encoder's embedding, and a head trained on one
    embedding cannot read another.  The encoder's decision (``logits``) is read on its own
    (the vocal span decision, the audio-only output, the vocal weight of fusion_node), so other
    encoders can join that decision without retraining the head.  Each member's nodes and
    weights enter under the prefix ``decision<i>/``; ``src``'s are kept as they are."""
    import onnx  # noqa: PLC0415 - export only
    from onnx import helper  # noqa: PLC0415
    model = onnx.load(str(src))
    g = model.graph
    if {o.name for o in g.output} != {'embedding', 'logits'} or len(g.input) != 1:
        raise ValueError(f'{src}: an encoder graph has one input and outputs embedding, logits')
    x = g.input[0].name
    mean = [n for n in g.node if n.name == DECISION_MEAN and list(n.output) == ['logits']]
    if mean:                        # members joined before: the new ones join that mean
        parts = list(mean[0].input)
        g.node.remove(mean[0])
    else:
        own = 'decision0/logits'
        for n in g.node:
            n.output[:] = [own if o == 'logits' else o for o in n.output]
            n.input[:] = [own if i == 'logits' else i for i in n.input]
        parts = [own]
    base_parts = len(parts)
    for i, path in enumerate(members, base_parts):
        mg = onnx.load(str(path)).graph
        if len(mg.input) != 1 or mg.input[0].name != x:
            raise ValueError(f'{path}: its input is not {x!r}')
        if not any(o.name == 'logits' for o in mg.output):
            raise ValueError(f'{path}: no logits output')
        if [d.dim_value for d in mg.input[0].type.tensor_type.shape.dim][1:] != \
                [d.dim_value for d in g.input[0].type.tensor_type.shape.dim][1:]:
            raise ValueError(f'{path}: its input shape differs from {src}\'s')
        pre = f'decision{i}/'

        def rename(name: str, pre: str = pre) -> str:
            return name if name in ('', x) else pre + name
        live = _live_nodes(mg, ['logits'])
        used = {t for n in live for t in n.input}
        for n in live:
            n.name = pre + (n.name or n.op_type)
            n.input[:] = [rename(t) for t in n.input]
            n.output[:] = [rename(t) for t in n.output]
            g.node.append(n)
        for t in mg.initializer:
            if t.name in used:
                t.name = rename(t.name)
                g.initializer.append(t)
        parts.append(pre + 'logits')
    g.node.append(helper.make_node('Mean', parts, ['logits'], name=DECISION_MEAN))
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return base_parts


def _check_decision(base: pathlib.Path, members: Sequence[pathlib.Path], merged: pathlib.Path,
                    section: dict, rng: np.random.Generator, base_parts: int = 1) -> float:
    """Max difference of ``merged`` (``add_decision_members``) from what it stands for: the
    embedding of ``base`` and the mean of every part's logits (``base``'s logits stand for the
    mean of its ``base_parts``); raises above TOLERANCE."""
    x = rng.standard_normal((3, 1, int(section['n_mels']), int(section['frames']))
                            ).astype(np.float32)

    def run(path: pathlib.Path) -> list[np.ndarray]:
        sess = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
        return sess.run(['embedding', 'logits'], {sess.get_inputs()[0].name: x})
    emb, logits = run(base)
    want = (base_parts * logits + sum(run(p)[1] for p in members)) / (base_parts + len(members))
    got_emb, got = run(merged)
    diff = max(float(np.abs(got_emb - emb).max()), float(np.abs(got - want).max()))
    if diff > TOLERANCE:
        raise RuntimeError(f'{merged}: differs from its parts by {diff:.3g} > {TOLERANCE}')
    return diff


def _live_nodes(g, outputs: Sequence[str]) -> list:
    """The nodes of graph ``g`` that ``outputs`` depend on, in graph order."""
    producers = {o: n for n in g.node for o in n.output}
    live, stack, seen = [], list(outputs), set()
    while stack:
        n = producers.get(stack.pop())
        if n is None or id(n) in seen:
            continue
        seen.add(id(n))
        live.append(n)
        stack.extend(n.input)
    order = {id(n): i for i, n in enumerate(g.node)}
    return sorted(live, key=lambda n: order[id(n)])


def export_bundle(out_dir: str | pathlib.Path, labels: Sequence[str],
                  vision: VisionEncoder | VisionEnsemble,
                  vision_pre: dict, vocal: VocalEncoder | VocalEnsemble, vocal_pre: dict,
                  fusion: FusionModel,
                  training: Optional[dict] = None, metrics: Optional[dict] = None,
                  version: str = '0.1.0', seed: int = 0,
                  vision_int8_faces: Optional[np.ndarray] = None) -> pathlib.Path:
    """Export the three models and write a verified manifest; returns the bundle path.

    ``vision_int8_faces`` (preprocessed training faces [N,1,S,S]): quantise the vision graph to
    int8 (quantize.py), calibrated on the first half and checked against the float model on
    the second half.
    """
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = list(labels)
    rng = np.random.default_rng(seed)
    for name, enc, key in (('vision', vision, 'vision_dim'), ('vocal', vocal, 'voice_dim')):
        if int(enc.config['embedding_size']) != int(fusion.config[key]):
            raise ValueError(f'the fusion head takes {fusion.config[key]}-d {name} embeddings, but '
                             f'the {name} encoder gives {enc.config["embedding_size"]}: train the '
                             f'fusion head on these encoders (emotion-train fusion --init-{name})')
    for m in (vision, vocal, fusion):
        m.eval()
    vision_section, d_vision = _export_vision(vision, vision_pre, out / VISION_FILE, rng,
                                              vision_int8_faces)
    d_vocal = _export_vocal(vocal, vocal_pre, out / VOCAL_FILE, rng)
    d_fusion = _export_fusion(fusion, out / FUSION_FILE, rng)

    vocal_section = _vocal_section(vocal, vocal_pre)
    manifest: dict[str, Any] = {
        'format': BUNDLE_FORMAT,
        'version': version,
        'created': _dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds'),
        'labels': labels,
        'vision': vision_section,
        'vocal': vocal_section,
        'fusion': _fusion_section(fusion),
        'valence_arousal': va_table(labels),
        'valence_arousal_source': VA_SOURCE,
        'training': training or {},
        'metrics': metrics or {},
        'export': {'opset': OPSET, 'torch': torch.__version__,
                   'max_abs_diff_torch_vs_onnxruntime': {'vision': d_vision, 'vocal': d_vocal,
                                                         'fusion': d_fusion}},
        'files': {name: sha256_of(out / name) for name in (VISION_FILE, VOCAL_FILE, FUSION_FILE)},
    }
    if fusion.va.shape[0] != len(labels):
        raise ValueError('fusion model class count differs from labels')
    (out / 'manifest.json').write_text(json.dumps(manifest, indent=1) + '\n', encoding='utf-8')
    loaded = ModelBundle.load(out, expected_labels=labels)  # verify it loads (sha256, fields)
    for key in ('vision', 'vocal', 'fusion'):
        loaded.session(key)   # and that every graph's inputs match the manifest
    return out


def replace_in_bundle(bundle_dir: str | pathlib.Path, out_dir: str | pathlib.Path, *,
                      fusion: Optional[FusionModel] = None,
                      vocal: Optional[tuple[torch.nn.Module, dict, Sequence[str]]] = None,
                      vision: Optional[tuple[torch.nn.Module, dict, Sequence[str]]] = None,
                      vision_record: Optional[dict] = None,
                      vision_int8_faces: Optional[np.ndarray] = None,
                      vision_head: Optional[dict] = None, fusion_record: Optional[dict] = None,
                      vocal_record: Optional[dict] = None, version: Optional[str] = None,
                      seed: int = 0, seven_bit_vision: bool = False,
                      metrics: Optional[dict] = None, training: Optional[dict] = None,
                      vocal_decision: Sequence[tuple[torch.nn.Module, dict, Sequence[str], dict]]
                      = (), voice_noise_subtraction: Optional[dict] = None,
                      keep_fusion: bool = False) -> pathlib.Path:
    """A copy of the bundle at ``bundle_dir`` with some of its models replaced.

    ``fusion``: a new fusion head; ``vocal``: (encoder, preprocess, labels) from a vocal
    checkpoint; ``vision``: (encoder, preprocess, labels) from vision checkpoints, exported as
    ``export_bundle`` does (int8 on ``vision_int8_faces`` where given); its embedding is
    another than the one the bundle's head was trained on, so without ``fusion`` the bundle
    gets a freshly initialised head for ``emotion-train stream-fusion``; ``vision_head``:
    ``{'weight' [C,E], 'bias' [C], 'labels', 'training'}`` fitted on the bundle's vision
    embedding (``vision_head.py``, grafted by ``graft_vision_head``);
    ``seven_bit_vision``: the int8 vision graph's weights halved to 7 bits
    (``quantize.reduce_weight_range``: the same answers on every CPU); ``vocal_decision``:
    (encoder, preprocess, labels, record) of vocal encoders whose logits join the vocal graph's
    decision (``add_decision_members``: the mean of the logits, the embedding unchanged, so the
    fusion head stays valid; members the bundle's decision has already stay in it).  The
    label list may change (six to seven): the vision head and the vocal encoder must then both
    say the new labels, and without ``fusion`` the bundle gets a freshly initialised head of the
    new size that ``emotion-train stream-fusion`` is there to train (the manifest says so); the
    same happens when the new vocal encoder's embedding has another size (an ensemble).
    ``voice_noise_subtraction``: the vocal front end's ``noise_subtraction`` section
    (``preprocess.subtract_noise``; an empty dict removes it); a new ``vocal`` encoder otherwise
    comes with its own front end, without one.
    ``keep_fusion``: the new ``vision`` encoder is the bundle's own model exported again (the
    same float weights, e.g. another graph layout), so its embedding is the one the bundle's
    fusion head learnt and the head is kept (the labels and embedding sizes must not change).
    ``fusion_record``/``vocal_record``/``vision_record`` go to the manifest's
    ``training.stream_fusion``, ``training.vocal`` and ``training.vision`` (their ``data``
    strings to ``training.data``).  ``metrics``: the new bundle's measured figures, in place
    of the manifest's ``metrics`` (figures of the source bundle); without it they stay as they
    are; ``training``: keys merged into the manifest's ``training`` record (note, hardware).
    Every other file is copied byte for byte; replaced graphs are checked against torch; the
    manifest's sections, labels, valence/arousal table, file hashes, version and training record
    are rewritten (a replaced record moves to ``training.data.*_replaced``); the bundle is loaded
    back with every session opened."""
    import shutil  # noqa: PLC0415
    src = ModelBundle.load(bundle_dir)
    old_labels = list(src.labels)
    labels = old_labels
    if vision is not None and (vision_head is not None or seven_bit_vision):
        raise ValueError('a new vision encoder brings its own head and its own int8 export '
                         '(7-bit weights): give it alone, without a vision head or 7-bit step')
    if vision_head is not None:
        labels = list(vision_head['labels'])
    if vision is not None:
        labels = list(vision[2])
    if vocal is not None and list(vocal[2]) != labels:
        raise ValueError(f'the vocal encoder says labels {list(vocal[2])}, the bundle '
                         f'{"with the new vision encoder " if vision else ""}'
                         f'{"with the new vision head " if vision_head else ""}{labels}')
    if labels != old_labels and vocal is None:
        raise ValueError(f'new labels {labels}: give a vocal encoder trained on them too')
    rng = np.random.default_rng(seed)
    voice_size = int(vocal[0].config['embedding_size']) if vocal else src.voice_embedding_size
    resized = voice_size != src.voice_embedding_size
    vision_size = (int(vision[0].config['embedding_size']) if vision
                   else src.vision_embedding_size)
    if keep_fusion and (fusion is not None or labels != old_labels or resized
                        or vision_size != src.vision_embedding_size):
        raise ValueError('keep_fusion: the bundle\'s fusion head is kept only for a vision '
                         'encoder with the same labels and embedding size, and no new head')
    if fusion is None and (labels != old_labels or resized
                           or (vision is not None and not keep_fusion)):
        va = va_table(labels)
        arch = src.manifest['fusion'].get('architecture', {})
        torch.manual_seed(seed)
        fusion = FusionModel(vision_size, voice_size, len(labels),
                             [va[k] for k in labels],
                             hidden_size=src.hidden_size, num_layers=src.num_layers,
                             dropout=float(arch.get('dropout', 0.2)))
        why = (f'the labels changed to {labels}' if labels != old_labels else
               f'the voice embedding grew from {src.voice_embedding_size} to {voice_size}'
               if resized else 'a new vision encoder gives another embedding')
        fusion_record = {'data': f'untrained (initial weights): {why}; '
                                 'train it with emotion-train stream-fusion'}
        print(f'replace_in_bundle: {why}; the fusion head is untrained: train it with '
              f'emotion-train stream-fusion --bundle {out_dir}', file=sys.stderr)
    if fusion is not None:
        if int(fusion.config['num_classes']) != len(labels):
            raise ValueError(f'the head has {fusion.config["num_classes"]} classes, the bundle '
                             f'{len(labels)} labels')
        for key, size in (('vision_dim', vision_size), ('voice_dim', voice_size)):
            if int(fusion.config[key]) != int(size):
                raise ValueError(f'the head takes {fusion.config[key]}-d {key}, the bundle gives '
                                 f'{size}')
    out = pathlib.Path(out_dir)
    if out.resolve() == src.path.resolve():
        raise ValueError(f'{out}: write the new bundle to another folder than its source')
    out.mkdir(parents=True, exist_ok=True)
    if seven_bit_vision and not isinstance(src.manifest['vision'].get('quantization'), dict):
        raise ValueError(f'{src.path}: its vision graph is not int8; 7-bit weights apply to an '
                         'int8 graph')
    base_pre = vocal[1] if vocal is not None else src.manifest['vocal']
    for i, (_, pre, member_labels, _) in enumerate(vocal_decision):
        if list(member_labels) != labels:
            raise ValueError(f'decision member {i + 1} says labels {list(member_labels)}, the '
                             f'bundle {labels}')
        differ = [k for k in VOCAL_FRONT_END if pre.get(k) != base_pre.get(k)] + (
            ['log_floor'] if log_floor(pre) != log_floor(base_pre) else []) + (
            ['normalisation type'] if (pre.get('normalisation') or {}).get('type') !=
            (base_pre.get('normalisation') or {}).get('type') else [])
        if differ:
            raise ValueError(f'decision member {i + 1} reads other log-mel windows than the '
                             f'bundle\'s vocal encoder: {", ".join(differ)} differ')
    replaced = {VISION_FILE: vision is not None or vision_head is not None or seven_bit_vision,
                VOCAL_FILE: vocal is not None or bool(vocal_decision),
                FUSION_FILE: fusion is not None}
    # a voiceprint member of the voice decision (vocal.voiceprint) stays while the vocal encoder
    # stays, like the decision members: its weight was chosen beside that encoder
    voiceprint = src.manifest['vocal'].get('voiceprint')
    if voiceprint is not None and vocal is not None:
        replaced[voiceprint['file']] = True
        print(f'replace_in_bundle: the new vocal encoder leaves out {src.path}\'s voiceprint '
              f'member ({voiceprint["file"]}); add one again with emotion-train voiceprint '
              f'--bundle {out_dir}', file=sys.stderr)
        voiceprint = None
    for f in src.path.iterdir():
        if f.is_file() and f.name != 'manifest.json' and not replaced.get(f.name):
            shutil.copy2(f, out / f.name)
    m = json.loads(json.dumps(src.manifest))
    diffs = m.setdefault('export', {}).setdefault('max_abs_diff_torch_vs_onnxruntime', {})
    tr = m.setdefault('training', {})
    data = tr.setdefault('data', {})

    def note(key: str, text: str) -> None:
        if key in data:
            data[f'{key}_replaced'] = data[key]
        data[key] = text

    if vision is not None:
        model, pre, _ = vision
        model.eval()
        m['vision'], diffs['vision'] = _export_vision(model, pre, out / VISION_FILE, rng,
                                                      vision_int8_faces)
        record = dict(vision_record or {})
        note('faces', record.get('data', 'vision encoder replaced'))
        for key in ('vision_head', 'int8_calibration_faces'):   # about the graph replaced
            if key in tr:
                tr[f'{key}_replaced'] = tr.pop(key)
            if key in data:
                data[f'{key}_replaced'] = data.pop(key)
        tr['vision'] = record
    if vision_head is not None:
        graft_vision_head(src.path / VISION_FILE, out / VISION_FILE, vision_head['weight'],
                          vision_head['bias'])
        arch = m['vision'].setdefault('architecture', {})
        arch['num_classes'] = len(labels)
        arch['head'] = ('linear on the embedding, fitted on the frozen encoder '
                        '(emotion-train vision-head); the members\' own heads are not in the graph')
        head_tr = dict(vision_head.get('training', {}))
        note('vision_head', head_tr.get('data', 'vision head fitted on the frozen embedding'))
        tr['vision_head'] = head_tr
    if seven_bit_vision:
        from .quantize import SEVEN_BIT, int8_weight_bound, reduce_weight_range  # noqa: PLC0415
        path = out / VISION_FILE
        if vision_head is None:
            shutil.copy2(src.path / VISION_FILE, path)
        was = int8_weight_bound(path)
        q = m['vision']['quantization']
        if was > SEVEN_BIT:         # a graph within 7 bits already stays as it is
            halved = reduce_weight_range(path, path)
            q['weights'] = (f'7-bit (|q| <= {SEVEN_BIT}): the {halved} int8 weight tensors of '
                            f'bundle {src.manifest.get("version")} halved (largest |q| {was}), '
                            'scales doubled; no overflow on x86 CPUs without VNNI')
        q['weight_bound'] = int8_weight_bound(path)
    if vocal is not None:
        model, pre, _ = vocal
        model.eval()
        diffs['vocal'] = _export_vocal(model, pre, out / VOCAL_FILE, rng)
        subtraction = m['vocal'].get('noise_subtraction')
        m['vocal'] = _vocal_section(model, pre)
        if subtraction and voice_noise_subtraction is None:
            print(f'replace_in_bundle: the new vocal encoder comes without {src.path}\'s noise '
                  f'subtraction {subtraction}; give it again with --voice-noise-subtraction',
                  file=sys.stderr)
        record = dict(vocal_record or {})
        note('speech', record.get('data', 'vocal encoder replaced'))
        tr['vocal'] = record
    if voice_noise_subtraction is not None:
        if voice_noise_subtraction:
            problem = noise_subtraction_problem(voice_noise_subtraction)
            if problem:
                raise ValueError(f'noise subtraction {problem}')
            m['vocal']['noise_subtraction'] = dict(voice_noise_subtraction)
        else:
            m['vocal'].pop('noise_subtraction', None)
    if vocal_decision:
        import tempfile  # noqa: PLC0415
        base = out / VOCAL_FILE if vocal is not None else src.path / VOCAL_FILE
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for i, (member, pre, _, _) in enumerate(vocal_decision, 1):
                paths.append(pathlib.Path(tmp) / f'decision{i}.onnx')
                member.eval()
                _export_vocal(member, pre, paths[-1], rng)
            merged = pathlib.Path(tmp) / VOCAL_FILE
            base_parts = add_decision_members(base, paths, merged)
            diffs['vocal_decision'] = _check_decision(base, paths, merged, m['vocal'], rng,
                                                      base_parts)
            shutil.copy2(merged, out / VOCAL_FILE)
        # members joined before stay in the decision while the encoder stays
        kept = m['vocal'].get('decision_members', []) if vocal is None else []
        records = [dict(r) for r in kept] + [dict(r) for *_, r in vocal_decision]
        m['vocal']['decision_members'] = records
        m['vocal']['outputs_note'] = (
            f'embedding: the encoder the fusion head was trained on; logits: the mean of its '
            f'logits and those of {len(records)} decision member(s) (decision_members)')
        text = '; '.join(r.get('data', 'a vocal encoder') for r in records)
        if kept:                    # the members before are part of the new text, not replaced
            data['speech_decision'] = text
        else:
            note('speech_decision', text)
        tr['vocal_decision'] = records
    if fusion is not None:
        fusion.eval()
        diffs['fusion'] = _export_fusion(fusion, out / FUSION_FILE, rng)
        m['fusion'] = _fusion_section(fusion)
        record = dict(fusion_record or {})
        note('fusion', record.get('data', 'fusion head replaced'))
        tr['stream_fusion'] = record
    if metrics is not None:
        m['metrics'] = dict(metrics)
    tr.update(training or {})
    m['labels'] = labels
    m['valence_arousal'] = va_table(labels)
    m['version'] = version or f'{m["version"]}+stream'
    m['created'] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')
    member_files = [voiceprint['file']] if voiceprint is not None else []
    m['files'] = {name: sha256_of(out / name)
                  for name in (VISION_FILE, VOCAL_FILE, FUSION_FILE, *member_files)}
    (out / 'manifest.json').write_text(json.dumps(m, indent=1) + '\n', encoding='utf-8')
    loaded = ModelBundle.load(out, expected_labels=labels)
    for key in ('vision', 'vocal', 'fusion'):
        loaded.session(key)
    return out


def export_fusion_head(bundle_dir: str | pathlib.Path, out_dir: str | pathlib.Path,
                       fusion: FusionModel, training: dict, version: Optional[str] = None,
                       seed: int = 0) -> pathlib.Path:
    """A copy of the bundle with ``fusion`` as its head (``replace_in_bundle``); the record
    ``training`` goes to the manifest's ``training.stream_fusion``.  Used by
    ``emotion-train stream-fusion``."""
    return replace_in_bundle(bundle_dir, out_dir, fusion=fusion, fusion_record=training,
                             version=version, seed=seed)


def fusion_head(checkpoint: dict) -> FusionModel:
    """The fusion head of a fusion, end2end or stream-fusion checkpoint.  Fusion/end2end
    checkpoints hold the whole system (prefixes vision./vocal./fusion.); only the head is taken."""
    fusion = FusionModel(**checkpoint['model_config'])
    sd = checkpoint['model']
    if any(k.startswith('fusion.') for k in sd):
        sd = {k[7:]: v for k, v in sd.items() if k.startswith('fusion.')}
    fusion.load_state_dict(sd)
    return fusion


def models_from_checkpoints(vision_ck: str, vocal_ck: str, fusion_ck: str
                            ) -> tuple[list[str], VisionEncoder | VisionEnsemble, dict,
                                       VocalEncoder | VocalEnsemble, dict, FusionModel, dict]:
    """Rebuild the three models from stage checkpoints (weights_only loads); ``vision_ck`` may
    and ``vocal_ck`` may each name several checkpoints joined by commas (an ensemble, see
    encoder_checkpoint.py)."""
    vision, cv = load_vision(vision_ck)
    vocal, ca = load_vocal(vocal_ck)
    cf = load_checkpoint(fusion_ck)
    labels = list(cv['labels'])
    for name, ck in (('vocal', ca), ('fusion', cf)):
        if list(ck['labels']) != labels:
            raise SystemExit(f'{name} checkpoint labels {ck["labels"]} differ from vision {labels}')
    # Only an end2end checkpoint's encoders were trained there and replace --vision/--vocal; a
    # fusion checkpoint contributes just its head (its encoders are frozen copies).
    sd = cf['model']
    if cf.get('stage') == 'end2end' and any(k.startswith('fusion.') for k in sd):
        vision.load_state_dict({k[7:]: v for k, v in sd.items() if k.startswith('vision.')})
        vocal.load_state_dict({k[6:]: v for k, v in sd.items() if k.startswith('vocal.')})
        print(f'emotion-export: encoders taken from the end2end checkpoint {fusion_ck}',
              file=sys.stderr)
    fusion = fusion_head(cf)
    info = {'vision': cv['summary'],
            'vocal': ca['summary'],
            'fusion': {k: cf.get(k) for k in ('epoch', 'best_uar', 'best_epoch')}}
    return labels, vision, cv['preprocess'], vocal, ca['preprocess'], fusion, info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog='emotion-export', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--vision', default=None,
                   help='vision stage checkpoint (best.pt); several joined by commas are exported '
                   'as one ensemble (mean logits, concatenated embeddings)')
    p.add_argument('--vocal', default=None,
                   help='vocal stage checkpoint; several joined by commas are exported as one '
                   'ensemble (mean logits, concatenated embeddings)')
    p.add_argument('--fusion', default=None, help='fusion or end2end stage checkpoint')
    p.add_argument('--from-bundle', metavar='BUNDLE', default=None,
                   help='start from this bundle and replace only what is given: --vision '
                   '(with --vision-tta, --int8-faces), --vocal, --fusion, --vision-head (the '
                   'rest is copied byte for byte); a new vision encoder, new labels or a voice '
                   'embedding of another size without --fusion leave an untrained head for '
                   'emotion-train stream-fusion')
    p.add_argument('--keep-fusion', action='store_true',
                   help='with --from-bundle --vision: the vision checkpoints are the bundle\'s '
                   'own encoder (the same float weights exported again), so the bundle\'s '
                   'fusion head still reads its embedding and is kept')
    p.add_argument('--vision-head', metavar='HEAD_NPZ', default=None,
                   help='with --from-bundle: a head fitted on the bundle\'s vision embedding '
                   '(emotion-train vision-head), grafted into the vision graph')
    p.add_argument('--vision-7bit-weights', action='store_true',
                   help='with --from-bundle: halve the int8 vision graph\'s weights to 7 bits, '
                   'so that x86 CPUs without VNNI (AVX2) compute what every other CPU does '
                   '(their uint8 x int8 kernels overflow with 8-bit weights)')
    p.add_argument('--vocal-decision', metavar='CK[,CK...]', default=None,
                   help='with --from-bundle: vocal checkpoints whose logits join the vocal '
                   'graph\'s decision (mean logits; members already in it stay); its embedding, '
                   'which the fusion head reads, stays as it is, so the head needs no '
                   'retraining. The decision is what '
                   'vocal_node pools per voiced span and fusion_node publishes on the audio-only '
                   'track and weighs into face rows (vocal_weight)')
    p.add_argument('--voice-noise-subtraction', nargs='+', metavar='X', default=None,
                   help='with --from-bundle: FRACTION OVER FLOOR sets the vocal front end\'s '
                   'noise subtraction (each window\'s noise = the mean mel power of its FRACTION '
                   'lowest-energy frames; a band keeps what exceeds OVER times it, at least FLOOR '
                   'times it; the bundle\'s encoders are unchanged), "off" removes it')
    p.add_argument('--out', required=True, help='bundle directory to write')
    p.add_argument('--version', default='0.1.0')
    p.add_argument('--vision-tta', choices=('checkpoint', 'none', 'flip'), default='checkpoint',
                   help='mirror test-time augmentation inside the vision ONNX graph '
                   '(default: as the checkpoint says)')
    p.add_argument('--int8-faces', metavar='FACES_DIR', default=None,
                   help='quantise the vision graph to int8 (about 3x faster on a CPU), '
                   'calibrated on faces drawn from this class-folder tree; give TRAINING faces '
                   '(e.g. DATA/fer2013/train), never the ones you will measure on')
    p.add_argument('--int8-count', type=int, default=512,
                   help='faces drawn for --int8-faces: half calibrate, half check the int8 graph '
                   'against the float model')
    p.add_argument('--training-json', action='append', default=[],
                   help='JSON file(s) merged into manifest "training" (data, commands, note, '
                   'hardware)')
    p.add_argument('--metrics-json', action='append', default=[],
                   help='JSON file(s) merged into manifest "metrics" (with --from-bundle: they '
                   'replace the source bundle\'s metrics)')
    args = p.parse_args(argv)
    if args.from_bundle:
        return _main_from_bundle(p, args)
    if args.vision_7bit_weights:
        p.error('--vision-7bit-weights: only with --from-bundle (a new --int8-faces export '
                'has 7-bit weights already)')
    if args.voice_noise_subtraction:
        p.error('--voice-noise-subtraction: only with --from-bundle')
    if args.keep_fusion:
        p.error('--keep-fusion: only with --from-bundle')
    missing = [f'--{k}' for k in ('vision', 'vocal', 'fusion') if not getattr(args, k)]
    if missing or args.vision_head or args.vocal_decision:
        only = '--vision-head' if args.vision_head else '--vocal-decision'
        p.error(f'{" ".join(missing) or only}: '
                f'{"required without" if missing else "only with"} --from-bundle')
    labels, vision, vpre, vocal, apre, fusion, info = models_from_checkpoints(
        args.vision, args.vocal, args.fusion)
    _apply_vision_tta(vision, args)
    training: dict = {'checkpoints': info, **_merged_json(args.training_json)}
    metrics = _merged_json(args.metrics_json)
    faces = _int8_calibration(args, labels, vpre, training)
    out = export_bundle(args.out, labels, vision, vpre, vocal, apre, fusion, training, metrics,
                        args.version, vision_int8_faces=faces)
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    print(f'bundle written to {out} ({size / 1e6:.1f} MB)', file=sys.stderr)
    return 0


def _merged_json(files: Sequence[str]) -> dict:
    """The JSON objects of ``files`` (--training-json, --metrics-json) merged in order."""
    merged: dict = {}
    for f in files:
        merged.update(json.loads(pathlib.Path(f).read_text()))
    return merged


def _apply_vision_tta(vision: torch.nn.Module, args: argparse.Namespace) -> None:
    """--vision-tta: mirror TTA on or off in the exported graph, or as the checkpoint says."""
    if args.vision_tta != 'checkpoint':
        vision.set_flip_tta(args.vision_tta == 'flip')


def _int8_calibration(args: argparse.Namespace, labels: Sequence[str], vision_pre: dict,
                      record: dict) -> Optional[np.ndarray]:
    """--int8-faces: the preprocessed calibration faces (None without it), noted in
    ``record['int8_calibration_faces']``."""
    if not args.int8_faces:
        return None
    faces = calibration_faces(args.int8_faces, labels, vision_pre, args.int8_count)
    record['int8_calibration_faces'] = f'{len(faces)} drawn from {args.int8_faces}'
    return faces


def _vocal_record(path: str, ck: dict) -> dict:
    """The manifest's training record of a vocal checkpoint: whom it heard, how."""
    split = ck.get('split') or {}
    heard = ', '.join(split.get('train_speakers') or []) or 'speakers not recorded'
    noise = ck.get('room_noise')
    if noise:
        heard += (f', clean and with {noise["copies"]} noisy cop'
                  f'{"y" if noise["copies"] == 1 else "ies"} ({"/".join(noise["kinds"])} '
                  f'room noise at {noise["dbfs"][0]:g} to {noise["dbfs"][1]:g} dBFS)')
    perturb = ck.get('perturbation')
    if perturb:
        heard += (f', each window\'s frequencies scaled by up to +-{perturb["warp"]:g} and '
                  f'its time by up to +-{perturb["stretch"]:g} (vocal tract length and '
                  f'speaking rate)')
    return {'data': f'vocal encoder {path}, trained on {heard}',
            'checkpoints': ck['summary'], 'split': split,
            **({'room_noise': noise} if noise else {}),
            **({'perturbation': perturb} if perturb else {})}


def _vision_record(spec: str, meta: dict) -> dict:
    """The manifest's training record of vision checkpoints: what they saw, how selected."""
    split = meta.get('split') or {}
    if split.get('faces_val'):
        where = str(split['faces_val'])
    elif split.get('holdout'):
        where = (f'a {split["holdout"]:g} stratified holdout (seed {split.get("seed")}) of the '
                 'training folder')
    else:
        where = 'no recorded split'
    return {'data': f'vision encoder(s) {spec}: {len(meta["labels"])} labels '
                    f'({", ".join(meta["labels"])}), selected on {where}',
            'checkpoints': meta['summary'], 'split': split}


def _noise_subtraction_arg(p: argparse.ArgumentParser,
                           values: Optional[Sequence[str]]) -> Optional[dict]:
    """--voice-noise-subtraction: None (not given), {} ("off") or the manifest section."""
    if values is None:
        return None
    if [v.lower() for v in values] == ['off']:
        return {}
    try:
        fraction, over, floor = (float(v) for v in values)
    except ValueError:
        p.error(f'--voice-noise-subtraction: give FRACTION OVER FLOOR (three numbers) or off, '
                f'got {" ".join(values)}')
    spec = {'fraction': fraction, 'over': over, 'floor': floor}
    problem = noise_subtraction_problem(spec)
    if problem:
        p.error(f'--voice-noise-subtraction: {problem}')
    return spec


def _main_from_bundle(p: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``emotion-export --from-bundle``: ``replace_in_bundle`` with the given parts."""
    if args.int8_faces and not args.vision:
        p.error('--from-bundle: --int8-faces quantises a new --vision encoder; the bundle\'s '
                'own vision graph is copied as it is')
    if args.keep_fusion and (not args.vision or args.fusion):
        p.error('--keep-fusion: only with --vision and without --fusion')
    if args.vision and (args.vision_head or args.vision_7bit_weights):
        p.error('--from-bundle --vision: a new vision encoder brings its own head, and an '
                '--int8-faces export has 7-bit weights already')
    if not (args.vision or args.vocal or args.fusion or args.vision_head
            or args.vision_7bit_weights or args.vocal_decision or args.metrics_json
            or args.training_json or args.voice_noise_subtraction):
        p.error('--from-bundle: give at least one of --vision, --vocal, --fusion, '
                '--vision-head, --vision-7bit-weights, --vocal-decision, '
                '--voice-noise-subtraction, --metrics-json, --training-json')
    subtraction = _noise_subtraction_arg(p, args.voice_noise_subtraction)
    training = _merged_json(args.training_json)
    metrics = _merged_json(args.metrics_json) if args.metrics_json else None
    vision = vision_record = faces = None
    if args.vision:
        model, cv = load_vision(args.vision)
        _apply_vision_tta(model, args)
        vision = (model, cv['preprocess'], list(cv['labels']))
        vision_record = _vision_record(args.vision, cv)
        faces = _int8_calibration(args, cv['labels'], cv['preprocess'], vision_record)
    head = None
    if args.vision_head:
        from .vision_head import load_head  # noqa: PLC0415
        head = load_head(args.vision_head)
    vocal = vocal_record = None
    if args.vocal:
        model, ck = load_vocal(args.vocal)
        vocal = (model, ck['preprocess'], list(ck['labels']))
        vocal_record = _vocal_record(args.vocal, ck)
    decision = []
    for path in (args.vocal_decision.split(',') if args.vocal_decision else []):
        model, ck = load_vocal(path)
        decision.append((model, ck['preprocess'], list(ck['labels']), _vocal_record(path, ck)))
    fusion = fusion_record = None
    if args.fusion:
        cf = load_checkpoint(args.fusion)
        fusion = fusion_head(cf)
        fusion_record = {'data': f'fusion head {args.fusion}',
                         **{k: cf.get(k) for k in ('epoch', 'best_uar', 'best_epoch')}}
    try:
        out = replace_in_bundle(args.from_bundle, args.out, fusion=fusion, vocal=vocal,
                                vision=vision, vision_record=vision_record,
                                vision_int8_faces=faces, vision_head=head, fusion_record=fusion_record,
                                vocal_record=vocal_record, version=args.version,
                                seven_bit_vision=args.vision_7bit_weights, metrics=metrics,
                                training=training, vocal_decision=decision,
                                voice_noise_subtraction=subtraction,
                                keep_fusion=args.keep_fusion)
    except (BundleError, ValueError) as exc:
        print(f'emotion-export: {exc}', file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    print(f'bundle written to {out} ({size / 1e6:.1f} MB)', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
