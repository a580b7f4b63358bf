"""Loaders against each set's published layout, on small files written here."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from emotion_training.datasets import (
    load_audio_folders,
    load_cremad,
    load_csv_manifest,
    load_emodb,
    load_image_folders,
    load_semaine,
    parse_cremad_name,
    parse_emodb_name,
)
from emotion_training.datasets.cremad import split_actors
from emotion_training.datasets.semaine import semaine_samples
from emotion_training.labels import DEFAULT_LABELS, canonical, parse_labels
from emotion_training.synthetic import write_face_folders

L = list(DEFAULT_LABELS)


def _wav(path, seconds=0.5, rate=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(int(seconds * rate), np.float32), rate)


def test_aliases_and_label_parsing():
    assert canonical('Anger', L) == 'angry'
    assert canonical('happiness', L) == 'happy'
    assert canonical('sadness', L) == 'sad'
    assert canonical('surprised', L) == 'surprise'          # seven labels: surprise is in
    assert canonical('surprise', L[:6]) is None             # ... a six-label set skips it
    assert canonical('contempt', L) is None                 # CK+'s contempt is in no set
    assert parse_labels('anger,Happiness,sad') == ['angry', 'happy', 'sad']
    with pytest.raises(ValueError, match='unknown emotion label'):
        parse_labels('angry,sleepy')


def test_fer_class_folders_with_aliases_and_skips(tmp_path):
    write_face_folders(tmp_path, ['happy', 'sad'], 2)
    (tmp_path / 'happy').rename(tmp_path / 'happiness')
    write_face_folders(tmp_path, ['neutral'], 1)
    (tmp_path / 'neutral').rename(tmp_path / 'contempt')   # outside the set: skipped
    s = load_image_folders(tmp_path, L)
    assert sorted({x.label for x in s}) == ['happy', 'sad'] and len(s) == 4


def test_emodb_names_and_speakers(tmp_path):
    for n in ['03a01Wa.wav', '08b02Tc.wav', '09a05Lb.wav', 'notemodb.wav']:
        _wav(tmp_path / 'wav' / n)
    assert parse_emodb_name('03a01Wa.wav') == {'speaker': '03', 'text': 'a01',
                                               'emotion': 'angry', 'version': 'a'}
    s = load_emodb(tmp_path, L)
    assert [(x.speaker, x.label) for x in s] == [('03', 'angry'), ('08', 'sad')]  # boredom skipped
    assert [x.speaker for x in load_emodb(tmp_path, L, speakers=['08'])] == ['08']


def test_cremad_layout_pairs_and_actor_split(tmp_path):
    names = ['1001_DFA_ANG_XX', '1001_IEO_HAP_HI', '1002_TIE_SAD_LO', '1003_MTI_NEU_XX',
             '1004_DFA_DIS_XX']
    for n in names:
        _wav(tmp_path / 'AudioWAV' / f'{n}.wav')
    (tmp_path / 'VideoFlash').mkdir()
    (tmp_path / 'VideoFlash' / '1001_DFA_ANG_XX.flv').write_bytes(b'')
    (tmp_path / 'VideoFlash' / '1002_TIE_SAD_LO.mp4').write_bytes(b'')
    assert parse_cremad_name('1001_DFA_ANG_XX.wav')['emotion'] == 'angry'
    assert parse_cremad_name('foo.wav') is None
    s = load_cremad(tmp_path, L)
    assert len(s) == 5
    assert s[0].video.name == '1001_DFA_ANG_XX.flv' and s[0].speaker == '1001'
    train, val = split_actors(s, 0.25, seed=0)
    assert not {x.speaker for x in train} & {x.speaker for x in val}


def test_semaine_sessions(tmp_path):
    d = tmp_path / 'Sessions' / '17'
    d.mkdir(parents=True)
    (d / 'user video.avi').write_bytes(b'')
    _wav(d / 'User HeadMounted.wav', 3.0)
    t = np.arange(0, 3.01, 0.02)
    for rater in ('R1', 'R2'):
        np.savetxt(d / f'{rater}S17TUDV.txt', np.c_[t, np.full_like(t, 0.8)])
        np.savetxt(d / f'{rater}S17TUDA.txt', np.c_[t, np.full_like(t, 0.5)])
    (tmp_path / 'Sessions' / '18').mkdir()               # no traces: ignored
    sessions = load_semaine(tmp_path)
    assert len(sessions) == 1 and sessions[0].audio.name == 'User HeadMounted.wav'
    assert np.allclose(sessions[0].va_at(1.0), [0.8, 0.5])
    samples = semaine_samples(sessions, L, window=1.0)
    assert samples and all(x.label == 'happy' for x in samples)


def test_csv_manifest(tmp_path):
    (tmp_path / 'a.png').write_bytes(b'')
    (tmp_path / 'manifest.csv').write_text(
        'path,label,speaker,audio,video\n'
        'a.png,Anger,s1,a.wav,\n'
        'b.png,contempt,s2,,\n'
        '/abs/c.png,sadness,s3,,c.mp4\n')
    s = load_csv_manifest(tmp_path / 'manifest.csv', L)
    assert [x.label for x in s] == ['angry', 'sad']
    assert s[0].path == tmp_path / 'a.png' and s[0].audio == tmp_path / 'a.wav'
    assert s[1].video == tmp_path / 'c.mp4' and s[1].speaker == 's3'
    (tmp_path / 'bad.csv').write_text('path,label\nx.png,sleepy\n')
    with pytest.raises(ValueError, match='bad.csv:2: unknown label'):
        load_csv_manifest(tmp_path / 'bad.csv', L)


def test_audio_class_folders(tmp_path):
    _wav(tmp_path / 'anger' / 'x.wav')
    _wav(tmp_path / 'neutral' / 'y.wav')
    assert sorted(x.label for x in load_audio_folders(tmp_path, L)) == ['angry', 'neutral']


def test_audio_class_folders_keep_corpus_speaker_ids(tmp_path):
    """Speech sorted into class folders keeps its EmoDB/CREMA-D speaker (for calibration)."""
    _wav(tmp_path / 'angry' / '03a01Wa.wav')
    _wav(tmp_path / 'sad' / '1091_IEO_SAD_LO.wav')
    _wav(tmp_path / 'sad' / 'recording.wav')
    got = {x.path.name: x.speaker for x in load_audio_folders(tmp_path, L)}
    assert got == {'03a01Wa.wav': '03', '1091_IEO_SAD_LO.wav': '1091', 'recording.wav': ''}


def test_real_data_layouts(data_root):
    fer = load_image_folders(data_root / 'fer2013' / 'validation', L)
    assert len(fer) > 3000 and {x.label for x in fer} == set(L)
    emo = load_emodb(data_root / 'emodb', L)
    assert {x.speaker for x in emo} == {'03', '08', '09', '10', '12', '13', '14', '15'}
    assert {x.label for x in emo} == set(L) - {'surprise'}   # EmoDB has no surprise
