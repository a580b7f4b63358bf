"""Seven labels (surprise included) and speech from several corpora (issue 17, points 1 and 2).

* RAVDESS names (Actor_AA/MM-VC-EE-II-SS-RR-AA.flac), calm excluded by default or merged;
* masked cross-entropy: a clip's loss ignores the labels its corpus cannot express;
* EmoDB + RAVDESS pooled: speaker ids namespaced by corpus, whole speakers held out, figures per
  corpus and pooled, with and without speaker calibration;
* a few training steps of every stage with seven labels, exported to a seven-label bundle;
* emotion-eval faces scores every folder of the bundle's labels and reports the ones it skips.

All on files generated here; nothing reads /work/shared/data.
"""
from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from emotion_training_helpers import TINY_VISION, TINY_VOCAL

from emotion_runtime.model_bundle import ModelBundle
from emotion_runtime.rep155 import REP155_EXPRESSIONS, expression_name
from emotion_training.datasets import load_ravdess, parse_ravdess_name
from emotion_training.evaluate import main as eval_main
from emotion_training.labels import CORPUS_LABELS, DEFAULT_LABELS, VALENCE_AROUSAL, label_mask
from emotion_training.pairing import PseudoPairs
from emotion_training.stages.common import masked_cross_entropy
from emotion_training.stages.vocal import _split, load_speech
from emotion_training.synthetic import write_emodb, write_face_folders, write_ravdess
from emotion_training.testing import make_test_bundle

SEVEN = list(DEFAULT_LABELS)
EMODB6 = [lab for lab in SEVEN if lab != 'surprise']


def _json_line(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope='module')
def corpora(tmp_path_factory) -> pathlib.Path:
    """DATA/{fer2013/{train,validation}, emodb/wav, ravdess/Actor_AA} in the real layouts:
    faces of seven labels, EmoDB of six (it has no surprise), RAVDESS of seven plus calm."""
    root = tmp_path_factory.mktemp('seven')
    write_face_folders(root / 'fer2013' / 'train', SEVEN, per_class=16, seed=1)
    write_face_folders(root / 'fer2013' / 'validation', SEVEN, per_class=4, seed=2)
    write_emodb(root / 'emodb', EMODB6, ['03', '08', '09'], per_speaker_class=1, seed=3,
                seconds=1.2)
    write_ravdess(root / 'ravdess', [*SEVEN, 'calm'], ['01', '02', '03'], per_actor_class=1,
                  seed=4, seconds=1.2, lead=0.2)
    return root


# ----------------------------------------------------------------------------- labels
def test_seven_labels_va_table_and_rep155_names():
    assert SEVEN == ['angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise']
    assert VALENCE_AROUSAL['surprise'] == (0.40, 0.67)   # Russell & Mehrabian (1977), surprised
    names = [expression_name(lab) for lab in SEVEN]
    assert names == ['angry', 'disgusted', 'scared', 'happy', 'neutral', 'sad', 'surprised']
    assert set(names) <= set(REP155_EXPRESSIONS)


def test_corpus_label_masks():
    assert 'surprise' not in CORPUS_LABELS['emodb'] and 'surprise' in CORPUS_LABELS['ravdess']
    assert 'calm' not in CORPUS_LABELS['ravdess']
    assert label_mask('emodb', SEVEN) == [True] * 6 + [False]
    assert label_mask('ravdess', SEVEN) == [True] * 7
    assert label_mask('', SEVEN) == [True] * 7 and label_mask(None, SEVEN) == [True] * 7


# ----------------------------------------------------------------------------- RAVDESS
def test_ravdess_names_calm_and_song(corpora, tmp_path):
    info = parse_ravdess_name('03-01-08-02-01-02-17.flac')
    assert info == {'modality': '03', 'channel': '01', 'emotion': 'surprise', 'intensity': '02',
                    'statement': '01', 'repetition': '02', 'actor': '17'}
    assert parse_ravdess_name('03-01-02-01-01-01-01.wav')['emotion'] == 'calm'
    assert parse_ravdess_name('03-01-09-01-01-01-01.wav') is None      # no emotion 09
    assert parse_ravdess_name('03a01Fa.wav') is None                   # EmoDB name
    root = corpora / 'ravdess'
    items = load_ravdess(root, SEVEN)
    assert {s.label for s in items} == set(SEVEN)                      # 7 labels, no calm
    assert not any(s.extra['calm'] for s in items) and len(items) == 3 * 7
    assert {s.speaker for s in items} == {'01', '02', '03'}
    assert {s.extra['corpus'] for s in items} == {'ravdess'}
    assert all(s.path.suffix == '.flac' for s in items)
    merged = load_ravdess(root, SEVEN, calm='neutral')                 # calm -> neutral
    assert len(merged) == 3 * 8
    assert sum(s.label == 'neutral' for s in merged) == 2 * sum(s.label == 'neutral' for s in items)
    assert all(s.label == 'neutral' for s in merged if s.extra['calm'])
    assert {s.speaker for s in load_ravdess(root, SEVEN, actors=['02'])} == {'02'}
    assert 'surprise' not in {s.label for s in load_ravdess(root, EMODB6)}
    with pytest.raises(ValueError):
        load_ravdess(root, SEVEN, calm='sad')
    # song files (vocal channel 02) are not speech
    song = tmp_path / 'Actor_05'
    song.mkdir()
    src = next(root.glob('Actor_01/*.flac')).read_bytes()
    (song / '03-02-03-01-01-01-05.flac').write_bytes(src)
    assert load_ravdess(tmp_path, SEVEN) == []


# ----------------------------------------------------------------------------- loss
def test_masked_cross_entropy_ignores_labels_the_corpus_lacks():
    torch.manual_seed(0)
    logits = torch.randn(4, 7, requires_grad=True)
    target = torch.tensor([0, 3, 6, 4])
    mask = torch.tensor([label_mask('emodb', SEVEN), label_mask('emodb', SEVEN),
                         label_mask('ravdess', SEVEN), label_mask('emodb', SEVEN)])
    weight = torch.tensor([1.0, 2.0, 1.0, 0.5, 1.0, 1.0, 3.0])
    loss = masked_cross_entropy(logits, target, mask, weight, smoothing=0.1)
    loss.backward()
    g = logits.grad
    # EmoDB rows: no gradient at all on the surprise logit (not pushed down as a wrong class)
    assert torch.all(g[[0, 1, 3], 6] == 0)
    assert g[2, 6] != 0                                   # the RAVDESS surprise clip: trained
    # an EmoDB row is cross-entropy over its six labels, smoothing spread over those six
    for i in (0, 1, 3):
        six = F.cross_entropy(logits[i:i + 1, :6], target[i:i + 1], label_smoothing=0.1)
        lp = F.log_softmax(logits[i, :6].detach(), -1)
        q = torch.full((6,), 0.1 / 6)
        q[target[i]] += 0.9
        assert float(-(q * lp).sum()) == pytest.approx(float(six.detach()), abs=1e-5)
    # all-True mask (or none) = torch's own cross-entropy, so single-corpus runs are unchanged
    full = torch.ones(4, 7, dtype=torch.bool)
    ref = F.cross_entropy(logits, target, weight=weight, label_smoothing=0.1)
    assert float(masked_cross_entropy(logits, target, full, weight, 0.1)) == float(ref)
    assert float(masked_cross_entropy(logits, target, None, weight, 0.1)) == float(ref)
    # weighted mean: sum(w[y] * loss_i) / sum(w[y])
    per = torch.stack([masked_cross_entropy(logits[i:i + 1], target[i:i + 1], mask[i:i + 1],
                                            None, 0.1) for i in range(4)])
    w = weight[target]
    assert float(loss) == pytest.approx(float((w * per).sum() / w.sum()), abs=1e-5)


# ----------------------------------------------------------------------------- splits
def _speech_args(root: pathlib.Path, speech: str = 'emodb,ravdess', **kw) -> argparse.Namespace:
    return argparse.Namespace(data=str(root), speech=speech, ravdess_calm='exclude', **kw)


def test_pooled_corpora_namespace_speakers_and_hold_whole_speakers_out(corpora):
    samples = load_speech(_speech_args(corpora), SEVEN)
    speakers = {s.speaker for s in samples}
    assert speakers == {'emodb:03', 'emodb:08', 'emodb:09',
                        'ravdess:01', 'ravdess:02', 'ravdess:03'}
    assert {s.extra['corpus'] for s in samples} == {'emodb', 'ravdess'}
    assert not any(s.label == 'surprise' for s in samples if s.extra['corpus'] == 'emodb')
    # EmoDB speaker 03 and RAVDESS actor 03 are two people: holding one out keeps the other
    val_sp = {'emodb:03', 'ravdess:01', 'ravdess:02'}
    train, val = _split(samples, val_sp, set())
    assert {s.speaker for s in val} == val_sp
    assert 'ravdess:03' in {s.speaker for s in train}
    assert not {s.speaker for s in train} & {s.speaker for s in val}
    assert {s.path for s in train}.isdisjoint({s.path for s in val})
    assert len(train) + len(val) == len(samples)
    with pytest.raises(SystemExit, match='unknown speaker'):
        _split(samples, {'03'}, set())     # a bare id is ambiguous once corpora are pooled
    # one corpus alone keeps its bare ids (EmoDB-only commands work unchanged)
    assert {s.speaker for s in load_speech(_speech_args(corpora, 'emodb'), SEVEN)} == \
        {'03', '08', '09'}


def test_pseudo_pairs_train_a_label_that_only_faces_have():
    face_y = np.repeat(np.arange(7), 5)
    voice_y = np.repeat(np.arange(6), 4)               # no surprise speech (EmoDB)
    voice_f = np.repeat(np.arange(12), 2)
    pairs = PseudoPairs(face_y, voice_y, voice_f, 7, steps=3, face_noise=0.2, voice_noise=0.2)
    assert pairs.classes == list(range(7))
    b = pairs.sample(400, np.random.default_rng(0))
    sur = b.labels == 6
    assert sur.any() and np.all(b.voice_present[sur] == 0)
    assert b.face_present[sur].any()
    assert np.all(face_y[b.face_idx[sur & (b.face_present[:, 0] > 0)][:, 0]] >= 0)


# ----------------------------------------------------------------------------- training
@pytest.fixture(scope='module')
def seven_runs(corpora, tmp_path_factory) -> dict:
    """vision, vocal (EmoDB + RAVDESS, speakers held out in both) and fusion, a few steps each
    with the default (seven) labels, then exported."""
    from emotion_training.export import main as export_main
    from emotion_training.train import main as train_main
    out = tmp_path_factory.mktemp('seven_runs')
    common = ['--data', str(corpora), '--quiet', '--seed', '0', '--threads', '1',
              '--optimizer', 'adamw', '--lr', '0.01']
    assert train_main(['vision', *common, *TINY_VISION, '--epochs', '1', '--batch-size', '32',
                       '--max-batches', '3', '--out', str(out / 'vision')]) == 0
    assert train_main(['vocal', *common, *TINY_VOCAL, '--epochs', '2', '--batch-size', '16',
                       '--max-batches', '4', '--speech', 'emodb,ravdess',
                       '--val-speakers', 'emodb:09,ravdess:03', '--vocal-normalisation',
                       'speaker', '--out', str(out / 'vocal')]) == 0
    assert train_main(['fusion', *common, '--init-vision', str(out / 'vision' / 'best.pt'),
                       '--init-vocal', str(out / 'vocal' / 'best.pt'), '--speech',
                       'emodb,ravdess', '--val-speakers', 'emodb:09,ravdess:03', '--epochs', '1',
                       '--steps-per-epoch', '3', '--batch-size', '16', '--fusion-hidden', '16',
                       '--out', str(out / 'fusion')]) == 0
    assert export_main(['--vision', str(out / 'vision' / 'best.pt'), '--vocal',
                        str(out / 'vocal' / 'best.pt'), '--fusion', str(out / 'fusion' / 'best.pt'),
                        '--out', str(out / 'bundle')]) == 0
    return {'out': out, 'bundle': out / 'bundle'}


def test_seven_label_training_and_export(seven_runs):
    out = seven_runs['out']
    vocal = torch.load(out / 'vocal' / 'best.pt', map_location='cpu', weights_only=True)
    assert list(vocal['labels']) == SEVEN
    assert sorted(vocal['split']['train_speakers']) == [
        'emodb:03', 'emodb:08', 'ravdess:01', 'ravdess:02']
    bundle = ModelBundle.load(seven_runs['bundle'], expected_labels=SEVEN)
    assert bundle.labels == SEVEN
    va = bundle.manifest['valence_arousal']
    assert list(va) == SEVEN and va['surprise'] == [0.40, 0.67]
    emb, logits = bundle.encode_faces([np.zeros((48, 48), np.uint8)])
    assert logits.shape == (1, 7)


def test_vocal_heldout_figures_per_corpus_pooled_with_and_without_calibration(seven_runs):
    result = json.loads((seven_runs['out'] / 'vocal' / 'result.json').read_text())
    held = result['heldout']
    assert held['weights'] == 'last epoch' and held['speakers'] == 'validation'
    for mode in ('speaker', 'none'):
        block = held[mode]
        assert set(block) == {'calibration', 'pooled', 'emodb', 'ravdess'}
        assert block['pooled']['n'] == block['emodb']['n'] + block['ravdess']['n']
        assert block['emodb']['n'] == 6 and block['ravdess']['n'] == 7   # 1 speaker each
        assert block['emodb']['per_class_recall']['surprise'] is None   # EmoDB: none to score
        assert 0.0 <= block['pooled']['uar'] <= 1.0
    assert held['none']['calibration'].startswith('none')


def test_vocal_cv_reports_per_corpus_and_uncalibrated(corpora, tmp_path):
    from emotion_training.train import main as train_main
    assert train_main(['vocal', '--data', str(corpora), '--quiet', '--threads', '1', *TINY_VOCAL,
                       '--epochs', '1', '--batch-size', '16', '--speech', 'emodb,ravdess',
                       '--vocal-normalisation', 'speaker', '--cv', '--cv-folds', '2',
                       '--out', str(tmp_path / 'cv')]) == 0
    cv = json.loads((tmp_path / 'cv' / 'cv_result.json').read_text())
    tested = [sp for fold in cv['folds'] for sp in fold['test_speakers']]
    assert len(tested) == len(set(tested)) == 6           # every speaker tested exactly once
    for mode in ('speaker', 'none'):
        assert cv['heldout'][mode]['pooled']['n'] == cv['pooled']['n'] == 3 * 6 + 3 * 7


# ----------------------------------------------------------------------------- emotion-eval
def test_eval_faces_scores_bundle_labels_and_reports_skipped_folders(tmp_path, capsys):
    faces = tmp_path / 'ckplus'
    write_face_folders(faces, ['angry', 'happy', 'surprise', 'contempt'], per_class=2, seed=5)
    seven = make_test_bundle(tmp_path / 'b7', labels=SEVEN)
    six = make_test_bundle(tmp_path / 'b6', labels=EMODB6)
    assert eval_main(['faces', '--bundle', str(seven), str(faces)]) == 0
    captured = capsys.readouterr()
    res = _json_line(captured.out)
    assert res['n'] == 6 and res['labels'] == SEVEN
    assert res['per_class_recall']['surprise'] is not None         # CK+ surprise scored
    assert res['skipped_classes'] == {'contempt': 2}
    assert 'NOT scored' in captured.err and 'contempt (2 files)' in captured.err
    assert eval_main(['faces', '--bundle', str(six), str(faces)]) == 0
    captured = capsys.readouterr()
    res = _json_line(captured.out)
    assert res['n'] == 4 and res['skipped_classes'] == {'contempt': 2, 'surprise': 2}
    assert 'surprise (2 files)' in captured.err
    # nothing skipped: said so (an empty table), not left out
    only = tmp_path / 'only'
    write_face_folders(only, ['happy', 'sad'], per_class=1, seed=6)
    assert eval_main(['faces', '--bundle', str(seven), str(only)]) == 0
    assert _json_line(capsys.readouterr().out)['skipped_classes'] == {}


def test_eval_speech_ravdess_per_corpus_and_uncalibrated(seven_runs, corpora, capsys):
    assert eval_main(['speech', '--bundle', str(seven_runs['bundle']),
                      str(corpora / 'ravdess')]) == 0
    res = _json_line(capsys.readouterr().out)
    assert res['n'] == 3 * 7 and res['labels'] == SEVEN
    assert set(res['per_corpus']) == {'ravdess'} and res['per_corpus']['ravdess']['n'] == 21
    assert res['no_calibration']['n'] == 21 and 'ravdess' in res['no_calibration']['per_corpus']
    assert 'per speaker' in res['speaker_calibration']


def test_per_corpus_figures_within_the_corpus_labels():
    """A corpus without some labels (EmoDB: no surprise) is also scored with the decision taken
    among its own labels: a clip whose top logit is surprise counts as its runner-up."""
    from emotion_training.datasets.common import Sample
    from emotion_training.evaluate import _per_corpus
    s = SEVEN.index('surprise')
    kept = [Sample('a.wav', 'angry', 'x', extra={'corpus': 'emodb'}),
            Sample('b.wav', 'sad', 'y', extra={'corpus': 'emodb'}),
            Sample('c.wav', 'surprise', 'z', extra={'corpus': 'ravdess'})]
    y = np.array([SEVEN.index('angry'), SEVEN.index('sad'), s])
    logits = np.zeros((3, 7), np.float32)
    logits[0, s], logits[0, SEVEN.index('angry')] = 3.0, 2.0     # surprise first, angry second
    logits[1, SEVEN.index('sad')] = 1.0
    logits[2, s] = 1.0
    res = _per_corpus(y, logits, kept, SEVEN)
    assert res['emodb']['accuracy'] == 0.5                        # over all seven labels
    own = res['emodb']['own_labels']
    assert own['labels'] == EMODB6 and own['accuracy'] == 1.0 and own['uar'] == 1.0
    assert 'own_labels' not in res['ravdess']                     # RAVDESS has all seven


def test_eval_speech_emodb_reports_its_six_labels(seven_runs, corpora, capsys):
    assert eval_main(['speech', '--bundle', str(seven_runs['bundle']), '--calibration', 'none',
                      str(corpora / 'emodb')]) == 0
    res = _json_line(capsys.readouterr().out)
    emodb = res['per_corpus']['emodb']
    assert emodb['own_labels']['labels'] == EMODB6
    assert emodb['own_labels']['n'] == emodb['n'] == res['n']
    assert emodb['own_labels']['per_class_recall']['surprise'] is None
