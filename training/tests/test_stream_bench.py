"""The stream benchmark (`emotion-eval stream`): dev stream generator, follow-time metric, CLI.

Runs on synthetic faces and speech (no /work/shared/data needed); the one test that reads the
real RAVDESS copy skips where it is absent.
"""
from __future__ import annotations

import hashlib
import json
import pathlib

import numpy as np
import pytest
import soundfile as sf
from emotion_training_helpers import LABELS6, write_ravdess

from emotion_training import media
from emotion_training import stream_bench as sb
from emotion_training.datasets.folders import load_image_folders
from emotion_training.eval_bag import NS, Prediction, Truth, follow_times
from emotion_training.synthetic import write_face_folders

SIZE, FPS, RATE = (160, 120), 5.0, 16000


@pytest.fixture(scope='module')
def syn_root(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp('streamdata')
    write_face_folders(root / 'fer2013' / 'validation', LABELS6, per_class=6, seed=4)
    write_ravdess(root / 'ravdess', actors=('01', '02', '11'))   # 11: the dev half
    return root


@pytest.fixture(scope='module')
def items(syn_root):
    faces = load_image_folders(syn_root / 'fer2013' / 'validation', LABELS6)
    speech = sb.load_speech_spec('ravdess', syn_root, LABELS6)
    return faces, speech


def _build(items, seed: int, n: int = 14):
    return sb.build_stream_clip(*items, LABELS6, seed, n, SIZE, FPS, RATE)


def _frames_digest(clip) -> str:
    h = hashlib.sha256()
    for _, frame in clip.frames():
        h.update(frame.tobytes())
    return h.hexdigest()


def test_ravdess_spec_maps_labels_and_excludes_calm_and_surprise(syn_root):
    items = sb.load_speech_spec('ravdess', syn_root, LABELS6)
    assert {s.label for s in items} == set(LABELS6)
    assert {s.speaker for s in items} == {'01', '02', '11'}
    codes = {s.path.name.split('-')[2] for s in items}
    assert '02' not in codes and '08' not in codes          # calm and surprised left out
    calm = sb.load_speech_spec('ravdess', syn_root, LABELS6, calm='neutral')
    assert len(calm) == len(items) + 3 * 3                  # calm files become neutral
    one = sb.load_speech_spec('ravdess:2', syn_root, LABELS6)
    assert {s.speaker for s in one} == {'02'}
    with pytest.raises(ValueError, match='ravdess'):
        sb.load_speech_spec('cremad', syn_root, LABELS6)


def test_stream_is_deterministic_per_seed(items):
    clip_a, plan_a = _build(items, 3)
    clip_b, plan_b = _build(items, 3)
    assert plan_a == plan_b
    assert np.array_equal(clip_a.audio, clip_b.audio)
    assert _frames_digest(clip_a) == _frames_digest(clip_b)
    _, plan_c = _build(items, 4)
    assert plan_c != plan_a


def test_stream_has_the_promised_placements(items):
    faces, speech = items
    clip, plan = _build(items, 1)
    counts = sb.placement_counts(plan)
    assert counts['segments'] == 14
    for key in ('no_speech', 'one_utterance', 'several_utterances', 'face_gap', 'two_faces'):
        assert counts[key] >= 1, key
    bg = media.make_background(SIZE, 1)
    x = clip.audio
    for prev, seg in zip([None, *plan], plan):
        assert sb.MIN_SEG - 1e-9 <= seg.end - seg.start <= sb.MAX_SEG + 1e-9
        assert prev is None or (prev.label != seg.label and abs(prev.end - seg.start) < 1e-9)
        assert seg.label in LABELS6
        assert all(faces[i].label == seg.label for i in seg.faces)       # one true label
        assert all(speech[i].label == seg.label and speech[i].speaker == seg.speaker
                   for _, i in seg.utterances)
        a, b = int(seg.start * RATE), int(seg.end * RATE)
        if not seg.utterances:                                       # a quiet room only
            assert np.sqrt(np.mean(x[a:b] ** 2)) < 0.005
        for j, (u, _i) in enumerate(seg.utterances):
            assert seg.start <= u < seg.end
            if j:                                       # in turn, a pause between them
                p_u, p_i = seg.utterances[j - 1]
                length = sf.info(str(speech[p_i].path)).duration
                assert u >= p_u + length
            lo = int(u * RATE)
            assert np.sqrt(np.mean(x[lo:min(b, lo + 2 * RATE)] ** 2)) > 0.01
    # faces: none in a gap, two at once where promised (both halves of the frame differ)
    gap = next(s for s in plan if s.face_gap)
    two = next(s for s in plan if len(s.faces) == 2)
    one = next(s for s in plan if len(s.faces) == 1 and not s.face_gap)
    t_gap = (gap.face_gap[0] + gap.face_gap[1]) / 2
    seen = {}
    for t, frame in clip.frames():
        for name, when in (('gap', t_gap), ('two', (two.start + two.end) / 2),
                           ('one', (one.start + one.end) / 2)):
            if name not in seen and t >= when - 0.5 / FPS:
                seen[name] = np.abs(frame.astype(int) - bg).mean(axis=(0, 2))
    w = SIZE[0]
    assert seen['gap'].max() == 0                                    # the background only
    assert seen['two'][:w // 3].mean() > 5 and seen['two'][-w // 3:].mean() > 5
    assert seen['one'][:w // 6].mean() < 1 and seen['one'][w // 3:2 * w // 3].mean() > 5
    assert sb.faces_in_view(plan, FPS, clip.n_frames) > 0


def test_follow_times_on_a_hand_made_sequence():
    step = NS // 5
    labels = ['happy'] * 5 + ['sad'] * 5 + ['angry'] * 5 + ['happy'] * 5
    truth = Truth([(i * step, lab) for i, lab in enumerate(labels)], max_gap_ns=NS // 2)

    def p(t_s: float, lab: str, emitted: bool = True) -> Prediction:
        ns = int(t_s * NS)
        return Prediction(ns, 'f1', lab, 0.9, 1, emitted_ns=ns if emitted else 0)
    preds = [p(0.5, 'happy'), p(1.1, 'happy'), p(1.4, 'sad'), p(1.6, 'sad'),   # sad: 0.4 s
             p(2.1, 'sad'), p(2.5, 'sad'),                                   # angry: never
             p(3.2, 'angry'),                                                # too late for it
             p(3.6, 'happy', emitted=False)]                                 # happy: 0.6 s
    out = follow_times(preds, truth)
    assert out == {'changes': 3, 'followed': 2, 'median_s': 0.5, 'p90_s': pytest.approx(0.58)}
    assert follow_times([], truth)['median_s'] is None
    # a gap longer than max_gap in the truth is not a change
    gappy = Truth([(0, 'happy'), (step, 'happy'), (5 * NS, 'sad')], max_gap_ns=NS // 2)
    assert follow_times(preds, gappy)['changes'] == 0


def test_stream_cli_builds_scores_and_reports(syn_root, tmp_path, capsys):
    from emotion_training.evaluate import main
    from emotion_training.testing import make_test_bundle
    bundle = make_test_bundle(tmp_path / 'b', LABELS6)
    out = tmp_path / 'out'
    rc = main(['stream', '--data', str(syn_root), '--seeds', '0', '1', '--segments', '3',
               '--size', '160x120', '--fps', '5', '--bundle', str(bundle), '--out', str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    line = json.loads(captured.out.strip().splitlines()[-1])
    assert [r['seed'] for r in line['seeds']] == [0, 1]
    for key in sb.FIGURES:
        assert key in line['mean'] and 0 <= line['mean'][key]['n'] <= 2, key
    full = json.loads((out / 'stream.json').read_text())
    for row in full['seeds']:
        assert row['placements']['segments'] == 3 and row['frames'] > 0
    assert (out / 'stream.png').stat().st_size > 0
    md = (out / 'stream.md').read_text()
    assert 'mean ± sd' in md and 'follow' in md
    from emotion_runtime.cpu import cpu_summary
    assert full['cpu'] == cpu_summary() and f'- CPU: {full["cpu"]}' in md
    assert 'Following a change of the true label' in (out / 'seed0' / 'report.md').read_text()
    assert not (out / 'bags').exists()                     # temporary unless --keep-bags


def test_stream_jobs_give_the_same_figures_as_one_at_a_time(syn_root, tmp_path, capsys):
    from emotion_training.evaluate import main
    from emotion_training.testing import make_test_bundle
    bundle = make_test_bundle(tmp_path / 'b', LABELS6)
    args = ['stream', '--data', str(syn_root), '--seeds', '3', '0', '--segments', '3', '--size',
            '160x120', '--fps', '5', '--bundle', str(bundle)]
    rows = {}
    for jobs in ('1', '2'):
        out = tmp_path / f'out{jobs}'
        assert main(args + ['--out', str(out), '--jobs', jobs]) == 0, capsys.readouterr().err
        full = json.loads((out / 'stream.json').read_text())
        wall = ('build_s', 'replay_s')
        rows[jobs] = [{k: v for k, v in r.items() if k not in wall} for r in full['seeds']]
        assert [r['seed'] for r in full['seeds']] == [3, 0]        # the order asked for
        assert full['params']['face_node']['min_face_size'] > 0
    assert rows['1'] == rows['2']
    assert main(args + ['--out', str(tmp_path / 'bad'), '--jobs', '0']) == 2
    assert '--jobs 0' in capsys.readouterr().err


def test_ravdess_dev_speech_of_the_shared_data():
    root = sb.default_data()
    if not (root / 'ravdess').is_dir():
        pytest.skip(f'RAVDESS not found at {root} (set EMOTION_DATA)')
    items = sb.load_speech_spec('ravdess', root, LABELS6)
    assert len({s.speaker for s in items}) == 20
    assert {s.label for s in items} == set(LABELS6)


def test_stream_cli_offers_the_heads_validation_quarter(tmp_path):
    """--faces-half fusion_val: the quarter of the fusion half that only validates the head."""
    from emotion_training.evaluate import build_parser
    from emotion_training.splits import FUSION_VAL, stream_faces, stream_part
    args = build_parser().parse_args(['stream', '--faces-half', 'fusion_val',
                                      '--speech', 'ravdess:10'])
    assert args.faces_half == FUSION_VAL
    write_face_folders(tmp_path, LABELS6, per_class=30, seed=4)
    faces = stream_faces(tmp_path, LABELS6, args.faces_half)
    everything = stream_faces(tmp_path, LABELS6, 'all')
    assert faces and len(faces) < len(everything)
    assert {stream_part(s.path) for s in faces} == {FUSION_VAL}
