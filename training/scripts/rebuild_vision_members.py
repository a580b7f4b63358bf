#!/usr/bin/env python3
"""Rebuild a bundle's vision members as float vision checkpoints from its int8 vision graph.

For exporting a shipped vision model again (another graph layout, e.g. bundle 1.3.0's mirror view
in the same batch as the face) when its training checkpoints are not at hand.  Each member's
weights are the graph's int8 weights dequantized (per-channel scale x (q - zero point)); the graph
holds every BatchNorm folded into the conv before it, so each BatchNorm is set to pass its input
through and add the folded bias.  The float model is then the int8 graph's model up to the
activation rounding: with ``--faces`` the script prints how often both pick the same class and
the largest logit difference.  Labels, preprocessing, split and training summaries come from the
manifest, so ``emotion-export --from-bundle B --vision A.pt,B.pt --vision-tta flip --keep-fusion
--int8-faces DIR`` accepts the checkpoints as the bundle's own encoder.

    source scripts/env.sh
    python training/scripts/rebuild_vision_members.py --bundle src/emotion_runtime/models/default \
        --out runs/rebuilt [--faces ../shared/data/fer2013/validation]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from emotion_training.models.vision_encoder import VisionEncoder, VisionEnsemble


def _dequantized(name: str, init: dict, producer: dict) -> np.ndarray:
    if name in init:
        return init[name].astype(np.float64)
    node = producer[name]
    if node.op_type != 'DequantizeLinear':
        raise ValueError(f'{name}: made by {node.op_type}, expected an initializer or '
                         'DequantizeLinear')
    q = init[node.input[0]].astype(np.float64)
    scale = init[node.input[1]].astype(np.float64)
    zero = init[node.input[2]].astype(np.float64) if len(node.input) > 2 else np.zeros(())
    axis = next((a.i for a in node.attribute if a.name == 'axis'), 1)
    if scale.ndim == 1 and q.ndim > 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
        zero = zero.reshape(shape) if zero.ndim else zero
    return (q - zero) * scale


def _onnx_conv_name(member: int, module: str) -> str:
    """The ONNX node of the face's own pass for conv module ``module`` (``backbone.…``)."""
    parts = module.split('.')[1:]
    if not parts[0].startswith('layer'):
        return f'/members.{member}/backbone/{parts[0]}/Conv'
    layer, block, rest = parts[0], parts[1], parts[2:]
    if rest[0] == 'downsample':
        return f'/members.{member}/backbone/{layer}/{layer}.{block}/downsample/downsample.{rest[1]}/Conv'
    return f'/members.{member}/backbone/{layer}/{layer}.{block}/{rest[0]}/Conv'


def rebuild(bundle: pathlib.Path) -> tuple[list[VisionEncoder], dict]:
    """The bundle's vision members as float VisionEncoders, and its manifest."""
    manifest = json.loads((bundle / 'manifest.json').read_text())
    vision = manifest['vision']
    graph = onnx.load(str(bundle / vision['file']))
    init = {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer}
    producer = {o: n for n in graph.graph.node for o in n.output}
    nodes = {n.name: n for n in graph.graph.node}
    configs = vision['architecture'].get('members', [vision['architecture']])
    members = []
    for k, config in enumerate(configs):
        encoder = VisionEncoder(**config).eval()
        modules = dict(encoder.named_modules())
        state = encoder.state_dict()
        new = {}
        for name, module in modules.items():
            if not isinstance(module, torch.nn.Conv2d):
                continue
            node = nodes[_onnx_conv_name(k, name)]
            bias = _dequantized(node.input[2], init, producer)
            new[name + '.weight'] = torch.tensor(_dequantized(node.input[1], init, producer),
                                                 dtype=torch.float32)
            bn = name[:-1] + '1' if '.downsample.' in name else name.replace('conv', 'bn')
            eps = modules[bn].eps
            new[bn + '.weight'] = torch.ones(len(bias))
            new[bn + '.bias'] = torch.tensor(bias, dtype=torch.float32)
            new[bn + '.running_mean'] = torch.zeros(len(bias))
            new[bn + '.running_var'] = torch.full((len(bias),), 1.0 - eps)
            new[bn + '.num_batches_tracked'] = state[bn + '.num_batches_tracked']
        for linear, onnx_name in (('embed.0', 'embed/embed.0/Gemm'), ('head', 'head/Gemm')):
            node = nodes[f'/members.{k}/{onnx_name}']
            weight = _dequantized(node.input[1], init, producer)
            trans_b = next((a.i for a in node.attribute if a.name == 'transB'), 0)
            new[linear + '.weight'] = torch.tensor(weight if trans_b else weight.T,
                                                   dtype=torch.float32)
            new[linear + '.bias'] = torch.tensor(_dequantized(node.input[2], init, producer),
                                                 dtype=torch.float32)
        missing = sorted(set(state) - set(new))
        if missing:
            raise ValueError(f'member {k}: no value in the graph for {missing}')
        encoder.load_state_dict(new)
        members.append(encoder)
    return members, manifest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--bundle', required=True, help='bundle whose int8 vision graph is read')
    ap.add_argument('--out', required=True, help='folder for member<N>.pt')
    ap.add_argument('--faces', default=None,
                    help='face folder (one sub-folder per label) to compare the rebuilt float '
                    'model with the int8 graph on (every 12th image, at most 300)')
    args = ap.parse_args()
    bundle, out = pathlib.Path(args.bundle), pathlib.Path(args.out)
    members, manifest = rebuild(bundle)
    vision, training = manifest['vision'], manifest.get('training', {})
    preprocess = {k: vision[k] for k in ('input_size', 'channels', 'mean', 'std')}
    summaries = training.get('vision', {}).get('checkpoints', {}).get('members', [])
    out.mkdir(parents=True, exist_ok=True)
    for k, member in enumerate(members):
        summary = summaries[k] if k < len(summaries) else {}
        path = out / f'member{k + 1}.pt'
        torch.save({'stage': 'vision', 'model': member.state_dict(),
                    'model_config': dict(member.config),
                    'labels': list(manifest['labels']), 'preprocess': preprocess,
                    'split': training.get('vision', {}).get('split'),
                    'rebuilt_from': f'{bundle} {vision["file"]} (bundle '
                                    f'{manifest["version"]}), weights dequantized',
                    **{key: summary.get(key) for key in ('epoch', 'best_uar', 'best_epoch')}},
                   path)
        print(f'{path}: member {k + 1} of bundle {manifest["version"]}, '
              f'{sum(p.numel() for p in member.parameters())} parameters')
    if args.faces:
        import cv2  # noqa: PLC0415 - only for the comparison

        from emotion_runtime.model_bundle import ModelBundle  # noqa: PLC0415
        from emotion_runtime.preprocess import face_to_input  # noqa: PLC0415
        files = sorted(pathlib.Path(args.faces).glob('*/*'))[::12][:300]
        crops = [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files]
        _, logits_int8 = ModelBundle.load(bundle).encode_faces(crops)
        ensemble = VisionEnsemble([m.config for m in members], flip_tta=True).eval()
        for target, member in zip(ensemble.members, members):
            target.load_state_dict(member.state_dict())
        x = torch.from_numpy(np.stack([face_to_input(c, vision) for c in crops])).float()
        with torch.no_grad():
            _, logits = ensemble(x)
        logits = logits.numpy()
        print(f'float vs int8 graph on {len(crops)} faces of {args.faces}: same class '
              f'{(logits.argmax(1) == logits_int8.argmax(1)).mean():.3f}, largest logit '
              f'difference {np.abs(logits - logits_int8).max():.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
