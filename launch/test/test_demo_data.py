"""The demo on data folders (`--faces DIR --speech DIR`): building its clip, and its latency
breakdown.

The whole graph on such a clip is `make demo FACES=... SPEECH=...` (too slow for a test on two
shared cores); here the step it adds, `emotion-bag make --faces --speech --write-video --write-wav`
on synthetic folders in FER2013 / RAVDESS / EmoDB layouts, and the breakdown's arithmetic on
known samples.
"""
from __future__ import annotations

import shutil
import struct

import pytest

from emotion_bringup.demo import (
    LiveSamples,
    _cdr_stamp_ns,
    breakdown_markdown,
    latency_breakdown,
    make_sample,
    parse_args,
    set_file_start,
    truth_schedule,
)
from emotion_bringup.graph import GraphArgs, robot_graph

LABELS = ('happy', 'sad', 'neutral')


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    synthetic = pytest.importorskip('emotion_training.synthetic')
    if shutil.which('emotion-bag') is None:
        pytest.skip('emotion-bag (the training package) is not installed')
    root = tmp_path_factory.mktemp('data')
    faces = synthetic.write_face_folders(root / 'fer' / 'validation', LABELS, 2)
    ravdess = synthetic.write_ravdess(root / 'ravdess', LABELS, ['01', '02'], 1, seconds=1.0)
    emodb = synthetic.write_emodb(root / 'emodb', LABELS, ['03'], 1, seconds=1.0)
    return faces, ravdess, emodb


@pytest.mark.parametrize('corpus', ['ravdess', 'emodb'])
def test_clip_from_faces_and_speech(folders, tmp_path, corpus):
    faces, ravdess, emodb = folders
    speech = ravdess if corpus == 'ravdess' else emodb
    video, wav, bag, clip, start = make_sample(tmp_path, 0.0, None, faces, speech, segments=3)
    assert video.is_file() and video.stat().st_size > 0
    assert wav.is_file() and wav.stat().st_size > 0
    labels = [g['label'] for g in clip.segments]   # the label set's labels in turn
    assert sorted(labels) == sorted(LABELS)
    # a segment lasts its utterance + 0.5 s, at least 2 s
    assert clip.duration == pytest.approx(clip.segments[-1]['end'], abs=0.05)
    assert clip.duration >= 3 * 2.0 - 0.01
    truths = truth_schedule(bag, start)
    assert {m.expression for _t, m in truths} == set(LABELS)
    assert clip.label_at(0.1) == labels[0]
    # one file_start_time lines video, audio and truth up only if the video (at camera_node's
    # 30 Hz) and the WAV last exactly the clip, loop after loop
    import cv2
    import soundfile as sf
    cap = cv2.VideoCapture(str(video))
    frames, fps = cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    assert fps == pytest.approx(30.0)
    assert frames / 30.0 == pytest.approx(clip.duration, abs=1 / 30)
    assert sf.info(str(wav)).duration == pytest.approx(clip.duration, abs=0.01)


def test_video_and_audio_get_one_start_time():
    specs = robot_graph(GraphArgs(camera='clip.mp4', audio_file='speech.wav', transport='none'))
    set_file_start(specs, 1_700_000_000_123_456_789)
    starts = {s.name: s.parameters.get('file_start_time') for s in specs}
    assert starts['camera_node'] == starts['microphone_node'] == pytest.approx(1700000000.1234568)
    assert all(v is None for k, v in starts.items() if k not in ('camera_node', 'microphone_node'))
    with pytest.raises(RuntimeError, match='microphone_node'):
        set_file_start([s for s in specs if s.name != 'microphone_node'], 0)


def test_demo_options():
    a = parse_args(['--faces', 'f', '--speech', 's', '--segments', '4'])
    assert (str(a.faces), str(a.speech), a.segments, a.seconds) == ('f', 's', 4, None)
    assert a.start_delay == 8.0 and parse_args(['--start-delay', '3']).start_delay == 3.0
    with pytest.raises(SystemExit):
        parse_args(['--speech', 's'])   # speech needs faces


def test_demo_params_files_reach_every_node_after_its_own_and_bad_ones_are_refused(
        tmp_path, capsys):
    from emotion_bringup.demo import with_param_files
    from emotion_bringup.graph import GraphArgs, robot_graph
    good = tmp_path / 'det.yaml'
    good.write_text('face_node:\n  ros__parameters:\n    face_detector: mtcnn_yunet\n')
    a = parse_args(['--params', str(good)])
    specs = with_param_files(robot_graph(GraphArgs(transport='none')), a.params)
    face = next(s for s in specs if s.name == 'face_node')
    assert face.param_files[-1] == good.resolve() and len(face.param_files) == 3
    args = face.ros_args()
    # the file after the package defaults and robot.yaml, before the launch arguments (-p)
    assert args.index(str(good.resolve())) > args.index(str(face.param_files[0]))
    assert args.index(str(good.resolve())) < args.index('-p')
    assert all(s.param_files[-1] == good.resolve() for s in specs)
    assert parse_args([]).params == []
    for text, why in (('face_node: [1, 2\n', 'not YAML'),
                      ('face_detector: yunet\n', 'ros__parameters'),
                      (None, 'cannot read')):
        bad = tmp_path / 'bad.yaml'
        bad.unlink(missing_ok=True)
        if text is not None:
            bad.write_text(text)
        with pytest.raises(SystemExit):
            parse_args(['--params', str(bad)])
        assert why in capsys.readouterr().err


def test_cdr_stamp():
    raw = b'\x00\x01\x00\x00' + struct.pack('<iI', 12, 345) + b'frame'
    assert _cdr_stamp_ns(raw) == 12 * 10**9 + 345
    raw = b'\x00\x00\x00\x00' + struct.pack('>iI', 12, 345)
    assert _cdr_stamp_ns(raw) == 12 * 10**9 + 345


def test_breakdown_arithmetic():
    ms = 10**6
    t0 = 1_000_000 * 10**9
    live = LiveSamples(image_ms=[3.0, 5.0, 7.0], vision_ms=[20.0, 30.0], voice_ms=[1100.0])
    rec = {'emotion': [],
           'diag': {'camera_node': [{'stamp_to_publish p50_ms': '2.0',
                                     'stamp_to_publish p95_ms': '4.0'}],
                    'face_node': [{'processing p50_ms': '9.0', 'processing p95_ms': '12.0',
                                   'latency_from_capture p50_ms': '20.0'},
                                  {'processing p50_ms': 'nan'},
                                  {'processing p50_ms': '11.0', 'processing p95_ms': '14.0',
                                   'latency_from_capture p50_ms': '22.0'}],
                    'fusion_node': [{'fusion_step_ms_per_face_mean': '0.05',
                                     'fusion_step_ms_per_face_max': '0.2',
                                     'input_to_publish_ms_p95': '1.5'}]}}
    # f1 at stamp t0 (first use, then a timer step on the held input), voice-only at t0 + 1 s
    for recv, stamp, fid, mods, rec_delay in ((30, 0, 'f1', 3, 2), (130, 0, 'f1', 3, 4),
                                              (1900, 1000, 'voice', 2, 6)):
        live.emotion.append((t0 + recv * ms, t0 + stamp * ms, fid, mods))
        rec['emotion'].append((t0 + (recv + rec_delay) * ms, t0 + stamp * ms, fid, mods))
    rows = {r['part']: r for r in latency_breakdown(rec, live, 1.0, bench_warmup_s=0.0)}
    assert rows['camera']['p50'] == 2.0 and rows['camera']['p95'] == 4.0
    assert rows['image_raw at a subscriber']['p50'] == 5.0
    assert rows['DDS hop image_raw']['p50'] == 3.0
    assert rows['detection']['p50'] == 10.0 and rows['detection']['n'] == 2
    assert rows['DDS hop vision/features']['p50'] == pytest.approx(25.0 - 21.0)
    assert rows['voice window']['p50'] == 1000.0
    assert rows['fusion step']['p50'] == 0.05 and rows['fusion input -> publish']['p95'] == 1.5
    assert rows['/emotion at a subscriber, with vision']['n'] == 2
    assert rows['/emotion at a subscriber, voice only']['p50'] == 900.0
    assert rows['recorder']['n'] == 3 and rows['recorder']['p50'] == 4.0
    assert rows['end to end (the report)']['n'] == 3
    assert rows['  first Emotion of a stamp']['n'] == 2
    assert rows['  repeated stamp']['p50'] == 134.0
    md = breakdown_markdown(list(rows.values()), (1.0, 2.0, 3.0))
    assert '| camera |' in md and 'bench' in md
