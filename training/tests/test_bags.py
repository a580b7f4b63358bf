"""Bag tools: make, read back, replay over real DDS, record, and `emotion-eval bag`.

Kept small (2 s bags at 320x240, 10 fps) so the whole file runs in well under a minute on two
shared cores.  DDS tests run in an isolated domain with LOCALHOST discovery (emotion_test_tools).
"""
from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from emotion_training import media
from emotion_training.bag_io import BagError, decode, decode_image, open_bag, ros_class, stamp_ns
from emotion_training.bag_make import write_clip
from emotion_training.labels import DEFAULT_LABELS

SIZE, FPS, SECONDS = (320, 240), 10.0, 2.0
START_NS = 1_700_000_000 * 1_000_000_000
N_FRAMES, N_CHUNKS, N_TRUTH = 20, 100, 10      # 2 s: 10 fps, 20 ms chunks, 5 Hz ground truth


def _make_demo(out: pathlib.Path, storage: str = 'mcap', speech: bool = True,
               raw_images: bool = True) -> dict:
    """The demo clip as a bag; raw bgr8 images here unless asked (the tests of raw timing and
    replay); ``emotion-bag make``'s default, JPEG on image_raw/compressed, has its own tests."""
    clip = media.demo_source(SECONDS, ('happy', 'sad'), SIZE, FPS, 16000, 'sweep', speech)
    return write_clip(clip, out, DEFAULT_LABELS, storage, 20.0, 5.0, START_NS, progress=False,
                      raw_images=raw_images)


@pytest.fixture(scope='module')
def demo_bag(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp('bags') / 'demo'
    _make_demo(out)
    return out


@pytest.fixture(scope='module')
def bundle(tmp_path_factory) -> pathlib.Path:
    from emotion_training.testing import make_test_bundle
    return make_test_bundle(tmp_path_factory.mktemp('bundle') / 'b')


def _read_all(bag: pathlib.Path) -> dict:
    """topic -> [(log time, msgtype, raw)] in bag order."""
    reader = open_bag(bag)
    try:
        out: dict = {}
        for conn, t, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t, conn.msgtype, bytes(raw)))
        return out
    finally:
        reader.close()


def _cli(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'emotion_training.bag_cli', *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


# --------------------------------------------------------------------------- make + read back
@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_make_demo_reads_back_with_rosbags_and_rclpy(tmp_path, storage):
    from rclpy.serialization import deserialize_message
    summary = _make_demo(tmp_path / 'b', storage)
    assert summary['counts'] == {'/image_raw': N_FRAMES, '/audio': N_CHUNKS,
                                 '/emotion/ground_truth': N_TRUTH}
    msgs = _read_all(tmp_path / 'b')
    assert set(msgs) == {'/image_raw', '/audio', '/emotion/ground_truth'}
    for topic, items in msgs.items():
        logs = [t for t, _, _ in items]
        stamps = [stamp_ns(decode(raw, mt)) for _, mt, raw in items]
        assert stamps == logs, f'{topic}: header stamp differs from the bag time'
        assert all(b > a for a, b in zip(stamps, stamps[1:])), f'{topic}: stamps not increasing'
        assert stamps[0] == START_NS
    # images: 10 fps timeline, bgr8 320x240, the same through rclpy's deserialiser
    img_t = [t for t, _, _ in msgs['/image_raw']]
    assert np.allclose(np.diff(img_t), 1e8, atol=1)
    _, mt, raw = msgs['/image_raw'][5]
    img = deserialize_message(raw, ros_class(mt))
    assert (img.width, img.height, img.encoding, img.step) == (320, 240, 'bgr8', 960)
    assert len(img.data) == 320 * 240 * 3
    # audio: contiguous 20 ms chunks of S16LE mono 16 kHz, stamped at their first sample
    chunks = [deserialize_message(raw, ros_class(mt)) for _, mt, raw in msgs['/audio']]
    assert {(c.sample_rate, c.channels, c.encoding) for c in chunks} == {(16000, 1, 'S16LE')}
    assert sum(len(c.data) for c in chunks) == int(SECONDS * 16000) * 2
    aud_t = [t for t, _, _ in msgs['/audio']]
    assert np.allclose(np.diff(aud_t), 20_000_000, atol=1)
    # ground truth: the label of the segment at each stamp, one-hot probabilities
    truth = [deserialize_message(raw, ros_class(mt))
             for _, mt, raw in msgs['/emotion/ground_truth']]
    assert [m.expression for m in truth] == ['happy'] * 5 + ['sad'] * 5
    for m in truth:
        assert list(m.labels) == list(DEFAULT_LABELS)
        assert list(m.probabilities) == [1.0 if lab == m.expression else 0.0
                                         for lab in DEFAULT_LABELS]
        assert m.face_id == ''


def test_demo_speech_is_audible_when_espeak_present(demo_bag):
    if shutil.which('espeak-ng') is None:
        pytest.skip('espeak-ng not installed')
    from emotion_perception.audio_format import decode_pcm
    x = np.concatenate([decode_pcm(bytes(decode(raw, mt).data), 'S16LE', 1)[:, 0]
                        for _, mt, raw in _read_all(demo_bag)['/audio']])
    assert np.sqrt(np.mean(x ** 2)) > 0.01   # the quiet-room noise alone is ~0.001


def _write_faces_and_speech(root: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    import cv2
    import soundfile as sf
    faces, speech = root / 'faces', root / 'speech'
    face = cv2.cvtColor(media.astronaut_face(), cv2.COLOR_BGR2GRAY)
    for lab in ('happy', 'sad', 'surprise'):          # surprise: not in the label set, skipped
        (faces / lab).mkdir(parents=True)
        cv2.imwrite(str(faces / lab / 'a.png'), cv2.resize(face, (48, 48)))
    speech.mkdir()
    t = np.arange(int(0.8 * 16000)) / 16000
    for name, f0 in (('03a01Fa.wav', 220.0), ('03a01Ta.wav', 110.0)):   # EmoDB: F happy, T sad
        sf.write(str(speech / name), 0.3 * np.sin(2 * np.pi * f0 * t), 16000)
    return faces, speech


def test_make_from_faces_and_emodb_speech(tmp_path):
    from emotion_training.bag_cli import main
    faces, speech = _write_faces_and_speech(tmp_path)
    rc = main(['make', str(tmp_path / 'b'), '--faces', str(faces), '--speech', str(speech),
               '--num-segments', '3', '--min-seconds', '1.0', '--max-seconds', '2.0',
               '--size', '160x120', '--fps', '10', '--motion', 'wander',
               '--start-time', '1700000000'])
    assert rc == 0
    msgs = _read_all(tmp_path / 'b')
    labels = [decode(raw, mt).expression for _, mt, raw in msgs['/emotion/ground_truth']]
    # segments pair labels in turn (happy, sad, happy); each lasts utterance + 0.5 s = 1.3 s
    runs = [lab for i, lab in enumerate(labels) if i == 0 or labels[i - 1] != lab]
    assert runs == ['happy', 'sad', 'happy']
    assert len(msgs['/image_raw/compressed']) == int(3 * 1.3 * 10)   # JPEG by default
    img = decode_image(decode(msgs['/image_raw/compressed'][0][2],
                              'sensor_msgs/msg/CompressedImage'))
    assert img.shape == (120, 160, 3)


def test_make_from_video_and_wav(tmp_path):
    import cv2
    import soundfile as sf

    from emotion_training.bag_cli import main
    video = tmp_path / 'clip.mp4'
    wr = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'mp4v'), 10.0, (64, 48))
    for i in range(15):
        wr.write(np.full((48, 64, 3), i * 10, np.uint8))
    wr.release()
    sf.write(str(tmp_path / 'clip.wav'), np.zeros(8000, np.float32), 8000)   # resampled to 16 k
    rc = main(['make', str(tmp_path / 'b'), '--video', str(video), '--audio',
               str(tmp_path / 'clip.wav'), '--label', 'anger', '--storage', 'sqlite3'])
    assert rc == 0
    msgs = _read_all(tmp_path / 'b')
    assert len(msgs['/image_raw/compressed']) == 15
    assert sum(len(decode(r, mt).data) for _, mt, r in msgs['/audio']) == int(1.5 * 16000) * 2
    assert {decode(r, mt).expression for _, mt, r in msgs['/emotion/ground_truth']} == {'angry'}


def test_make_errors_are_clear(tmp_path, capsys):
    from emotion_training.bag_cli import main
    (tmp_path / 'exists').mkdir()
    assert main(['make', str(tmp_path / 'exists'), '--demo', '--no-speech']) == 2
    assert 'exists already' in capsys.readouterr().err
    assert main(['make', str(tmp_path / 'x'), '--video', str(tmp_path / 'none.mp4'),
                 '--label', 'happy']) == 2
    assert 'none.mp4 does not exist' in capsys.readouterr().err
    assert main(['make', str(tmp_path / 'y'), '--faces', str(tmp_path)]) == 2
    assert 'no images in class folders' in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(['make', '--help'])
    assert exc.value.code == 0


# --------------------------------------------------------------------------- replay + record
def test_replay_publishes_in_order_with_rate_and_remap(demo_bag):
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from emotion_msgs.msg import AudioChunk, Emotion
    from emotion_test_tools.dds import RosHarness, isolated_domain, ros_env
    with isolated_domain() as domain_id, RosHarness('replay_checker') as ros:
        truth = ros.collect(Emotion, '/eval/truth', 10)
        images = ros.collect(Image, '/image_raw', qos_profile_sensor_data)
        audio = ros.collect(AudioChunk, '/audio', qos_profile_sensor_data)
        res = _cli('replay', str(demo_bag), '--rate', '2', '--remap',
                   'emotion/ground_truth:=eval/truth', '--wait-subscribers', '20', '--delay', '1',
                   env=ros_env(domain_id))
        assert res.returncode == 0, res.stderr
        ros.wait_for(lambda: len(truth) >= N_TRUTH, timeout=10)
        out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out['counts'] == {'/image_raw': N_FRAMES, '/audio': N_CHUNKS, '/eval/truth': N_TRUTH}
    # rate 2: the schedule spans half the bag's time (a replay cannot run ahead of it)
    assert out['wall_s'] >= out['bag_s'] / 2 - 0.01
    # reliable topic: everything, in order; best-effort streams: in order, (almost) everything
    assert [stamp_ns(m) for m in truth] == [START_NS + i * 200_000_000 for i in range(N_TRUTH)]
    assert [m.expression for m in truth] == ['happy'] * 5 + ['sad'] * 5
    for got, n in ((images, N_FRAMES), (audio, N_CHUNKS)):
        stamps = [stamp_ns(m) for m in got]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
        assert len(got) >= 0.8 * n, f'only {len(got)} of {n} best-effort messages arrived'


def test_replay_restamp_and_loop(demo_bag):
    from emotion_msgs.msg import Emotion
    from emotion_test_tools.dds import RosHarness, isolated_domain, ros_env
    with isolated_domain() as domain_id, RosHarness('loop_checker') as ros:
        truth = ros.collect(Emotion, '/emotion/ground_truth', 50)
        before = time.time_ns()
        res = _cli('replay', str(demo_bag), '--rate', '4', '--loop', '--loops', '2', '--restamp',
                   '--topics', '/emotion/ground_truth', '--wait-subscribers', '20',
                   env=ros_env(domain_id))
        assert res.returncode == 0, res.stderr
        ros.wait_for(lambda: len(truth) >= 2 * N_TRUTH, timeout=10)
    assert json.loads(res.stdout.strip().splitlines()[-1])['passes'] == 2
    stamps = [stamp_ns(m) for m in truth]
    assert len(stamps) == 2 * N_TRUTH
    assert all(s >= before for s in stamps), 'restamped stamps must be on the replay clock'
    assert all(b > a for a, b in zip(stamps, stamps[1:])), 'stamps must increase across loops'
    # within one pass the bag's spacing (200 ms) is scaled by the rate (4): 50 ms
    assert np.allclose(np.diff(stamps[:N_TRUTH]), 50_000_000, atol=2)
    assert np.allclose(np.diff(stamps[N_TRUTH:]), 50_000_000, atol=2)


def test_record_round_trip_and_live_eval(tmp_path, capsys):
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from emotion_msgs.msg import Emotion
    from emotion_test_tools.dds import RosHarness, isolated_domain, ros_env
    from emotion_training.eval_bag import main as eval_main
    labels = list(DEFAULT_LABELS)
    out = tmp_path / 'rec'
    n = 12
    with isolated_domain() as domain_id, RosHarness('record_feeder') as ros:
        proc = subprocess.Popen(
            [sys.executable, '-m', 'emotion_training.bag_cli', 'record', str(out), '--topics',
             '/emotion', '/emotion/ground_truth', '--type', '/emotion:=emotion_msgs/msg/Emotion',
             '--type', '/emotion/ground_truth:=emotion_msgs/msg/Emotion',
             '--max-messages', str(2 * n)],
            env=ros_env(domain_id), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
            pub_e = ros.publisher(Emotion, '/emotion', qos)
            pub_t = ros.publisher(Emotion, '/emotion/ground_truth', qos)
            assert ros.wait_for_subscribers(pub_e, 1, 30) and ros.wait_for_subscribers(pub_t, 1, 30)
            for i in range(n):
                s = time.time_ns()       # stamped now, as a node would: receive time >= stamp
                time.sleep(0.01)
                true = 'happy' if i < n // 2 else 'sad'
                said = true if i < 9 else 'neutral'      # 9 of 12 right (6 happy, 3 sad)
                for pub, lab, mods in ((pub_t, true, 3), (pub_e, said, 3 if i % 2 else 1)):
                    m = Emotion()
                    m.header.stamp.sec, m.header.stamp.nanosec = divmod(s, 1_000_000_000)
                    m.face_id, m.expression, m.labels = 'f1', lab, labels
                    m.probabilities = [1.0 if x == lab else 0.0 for x in labels]
                    m.confidence, m.modalities = 1.0, mods
                    pub.publish(m)
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
    assert proc.returncode == 0, stderr
    rec = json.loads(stdout.strip().splitlines()[-1])
    assert rec['counts'] == {'/emotion': n, '/emotion/ground_truth': n}
    msgs = _read_all(out)
    got = [decode(r, mt) for _, mt, r in msgs['/emotion']]
    assert [m.expression for m in got] == ['happy'] * 6 + ['sad'] * 3 + ['neutral'] * 3
    assert all(t >= stamp_ns(decode(r, mt)) for t, mt, r in msgs['/emotion']), \
        'log time is the receive time, after the stamp'
    # live evaluation of the recording
    rc = eval_main([str(out), '--mode', 'live', '--out', str(tmp_path / 'ev'), '--no-video'])
    assert rc == 0, capsys.readouterr().err
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line['mode'] == 'live' and line['n'] == n
    assert line['accuracy'] == pytest.approx(9 / 12)
    assert line['uar'] == pytest.approx((6 / 6 + 3 / 6) / 2)
    assert line['latency_ms']['end_to_end']['n'] == n
    assert line['latency_ms']['end_to_end']['p50'] >= 0
    assert set(line['ablation']) == {'vision_only', 'fused'}
    assert line['ablation']['vision_only']['n'] == 6
    for f in ('metrics.json', 'report.md', 'report.html', 'timeline.png', 'latency_hist.png',
              'confusion.png'):
        assert (tmp_path / 'ev' / f).stat().st_size > 0, f


# --------------------------------------------------------------------------- offline evaluation
def test_eval_bag_offline_writes_metrics_plots_and_video(demo_bag, bundle, tmp_path, capsys):
    import cv2
    # through emotion-eval's own dispatcher (evaluate.SUBCOMMANDS['bag'] -> eval_bag)
    evaluate = pytest.importorskip('emotion_training.evaluate')
    out = tmp_path / 'ev'
    rc = evaluate.main(['bag', str(demo_bag), '--bundle', str(bundle), '--out', str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    line = json.loads(captured.out.strip().splitlines()[-1])
    for key in ('mode', 'n', 'accuracy', 'uar', 'macro_f1', 'per_class_recall', 'labels',
                'confusion', 'coverage', 'ablation', 'latency_ms', 'video', 'video_frames',
                'files'):
        assert key in line, key
    assert line['mode'] == 'offline'
    assert set(line['ablation']) == {'fused', 'vision_only', 'voice_only'}
    assert line['n'] > 0 and 0.0 <= line['accuracy'] <= 1.0
    assert line['latency_ms']['frame_processing']['n'] == N_FRAMES
    metrics = json.loads((out / 'metrics.json').read_text())
    assert metrics['counts']['frames'] == N_FRAMES
    assert metrics['counts']['faces'] > 0, 'the Haar detector found no face in the demo bag'
    assert len(metrics['confusion']) == len(metrics['labels'])
    assert sum(map(sum, metrics['confusion'])) == metrics['n']
    for f in ('metrics.json', 'report.md', 'report.html', 'timeline.png', 'latency_hist.png',
              'confusion.png'):
        assert (out / f).stat().st_size > 0, f
    video = pathlib.Path(line['video'])
    assert video.stat().st_size > 0
    cap = cv2.VideoCapture(str(video))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames == line['video_frames'] == N_FRAMES
    assert '| fused |' in (out / 'report.md').read_text()


def test_eval_bag_offline_is_deterministic_and_reads_node_params(demo_bag, bundle, tmp_path,
                                                                 capsys):
    from emotion_training.eval_bag import main as eval_main
    # the shipped fusion.yaml holds the defaults: the same result as no --params at all
    fusion_yaml = pathlib.Path(__file__).resolve().parents[2] / 'src' / 'emotion_fusion' / \
        'config' / 'fusion.yaml'
    runs = []
    for k, extra in enumerate(([], ['--params', str(fusion_yaml)])):
        assert eval_main([str(demo_bag), '--bundle', str(bundle), '--out', str(tmp_path / str(k)),
                          '--no-video', *extra]) == 0, capsys.readouterr().err
        m = json.loads((tmp_path / str(k) / 'metrics.json').read_text())
        runs.append((m['confusion'], m['ablation'], m['counts']))
    capsys.readouterr()
    assert runs[0] == runs[1]
    bad = tmp_path / 'bad.yaml'
    bad.write_text('/**:\n  ros__parameters:\n    output_rate_hz: -1.0\n')
    assert eval_main([str(demo_bag), '--bundle', str(bundle), '--params', str(bad)]) == 2
    assert 'output_rate_hz' in capsys.readouterr().err


def test_eval_bag_errors_name_the_problem(tmp_path, demo_bag, bundle, capsys):
    from rosbags.rosbag2 import Writer

    from emotion_training.bag_types import typestore
    from emotion_training.eval_bag import main as eval_main
    # missing
    assert eval_main([str(tmp_path / 'nope'), '--bundle', str(bundle)]) == 2
    assert 'nope does not exist' in capsys.readouterr().err
    # not a bag
    (tmp_path / 'empty').mkdir()
    assert eval_main([str(tmp_path / 'empty'), '--bundle', str(bundle)]) == 2
    assert 'no metadata.yaml' in capsys.readouterr().err
    # corrupt: the storage file cut in half
    bad = tmp_path / 'corrupt'
    shutil.copytree(demo_bag, bad)
    mcap = next(bad.glob('*.mcap'))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    assert eval_main([str(bad), '--bundle', str(bundle), '--out', str(tmp_path / 'o1')]) == 2
    err = capsys.readouterr().err
    assert 'corrupt' in err and str(bad) in err
    # no ground truth
    ts = typestore()
    with Writer(tmp_path / 'nogt', version=9) as w:
        c = w.add_connection('/image_raw', 'sensor_msgs/msg/Image', typestore=ts)
        Image, Header, Time = (ts.types[k] for k in ('sensor_msgs/msg/Image',
                                                      'std_msgs/msg/Header',
                                                      'builtin_interfaces/msg/Time'))
        msg = Image(header=Header(stamp=Time(sec=1, nanosec=0), frame_id='c'), height=2, width=2,
                    encoding='bgr8', is_bigendian=0, step=6, data=np.zeros(12, np.uint8))
        w.write(c, 1_000_000_000, ts.serialize_cdr(msg, 'sensor_msgs/msg/Image'))
    assert eval_main([str(tmp_path / 'nogt'), '--bundle', str(bundle)]) == 2
    err = capsys.readouterr().err
    assert "lacks topic(s) ['/emotion/ground_truth']" in err and '/image_raw' in err
    assert eval_main([str(tmp_path / 'nogt'), '--mode', 'live']) == 2
    assert 'lacks topic' in capsys.readouterr().err
    with pytest.raises(BagError, match='does not exist'):
        open_bag(tmp_path / 'nope')


def test_truth_offset_recovers_the_restamp_shift():
    from emotion_training.eval_bag import truth_offset
    labels = ['happy'] * 10 + ['sad'] * 10 + ['happy'] * 10
    original = [(START_NS + i * 200_000_000, lab) for i, lab in enumerate(labels)]
    shift = 95_918_543_130_760_910
    late = [(s + shift, lab) for s, lab in original[3:20]]      # the recorder started late
    assert truth_offset(late, original) == shift
    full = [(s + shift, lab) for s, lab in original]
    assert truth_offset(full, original) == shift
    assert truth_offset(original, original) == 0
    assert truth_offset([(1, 'happy')], []) == 0


def _offline_pipeline(bag: pathlib.Path, bundle_dir: pathlib.Path, **fusion):
    """OfflinePipeline fed with the bag's images and audio in stamp order, as evaluate_offline."""
    from emotion_fusion.config import FusionConfig
    from emotion_perception.audio_format import decode_pcm, to_mono
    from emotion_runtime.model_bundle import ModelBundle
    from emotion_training.bag_io import find_topic
    from emotion_training.eval_bag import OfflinePipeline, _frame_bgr, ordered
    pipe = OfflinePipeline(ModelBundle.load(bundle_dir), FusionConfig.from_mapping(fusion))
    reader = open_bag(bag)
    try:
        img, aud = find_topic(reader, '/image_raw'), find_topic(reader, '/audio')
        image_ids = {c.id for c in img}
        image_stamps = []
        for s, _, conn, msg in ordered(reader, img + aud, bag):
            if conn.id in image_ids:
                image_stamps.append(s)
                pipe.on_image(s, str(msg.header.frame_id), _frame_bgr(msg))
            else:
                x = to_mono(decode_pcm(bytes(msg.data), str(msg.encoding), int(msg.channels)))
                pipe.on_audio(s, str(msg.header.frame_id), int(msg.sample_rate), x)
        pipe.finish(reader.end_time)
    finally:
        reader.close()
    return pipe, image_stamps


def test_eval_bag_offline_steps_by_the_fusion_nodes_schedule(demo_bag, bundle):
    """Offline steps follow fusion_node's StepSchedule: on vision arrival (output age 0) with
    step_on_vision, on the fixed output_rate_hz grid (age up to a period) without."""
    pipe, images = _offline_pipeline(demo_bag, bundle)          # defaults: step_on_vision
    assert pipe.cfg.step_on_vision and pipe.faces_seen > 0
    period = pipe.period_ns
    for name, st in pipe.steps.items():
        assert [t for t, _ in st] == sorted(t for t, _ in st), f'{name}: clock ran backwards'
    steps = pipe.steps['fused']
    vision_t = [t for t, kind in steps if kind == 'vision']
    assert len(vision_t) == pipe.faces_seen       # one face per frame: one step per face
    assert set(vision_t) <= set(images), 'a vision step runs when its image arrives'
    # ... and fuses the face that just arrived: output age (step time - stamp) 0
    fresh = [p.emitted_ns for p in pipe.preds['fused'] if p.emitted_ns == p.stamp_ns]
    assert fresh == vision_t
    assert sum(a == 0.0 for a in pipe.output_age_ms) == len(vision_t)
    # the fallback timer steps only where no vision step ran (before it) within one period
    last_vision = None
    for t, kind in steps:
        if kind == 'timer':
            assert last_vision is None or t - last_vision >= period, t
        else:
            last_vision = t
    assert any(kind == 'vision' for _, kind in pipe.steps['vision_only'])
    assert {kind for _, kind in pipe.steps['voice_only']} == {'timer'}   # it gets no vision
    assert pipe.step_counts()['fused']['vision'] == len(vision_t)

    grid, _ = _offline_pipeline(demo_bag, bundle, step_on_vision=False)
    for name, st in grid.steps.items():
        assert st and {kind for _, kind in st} == {'timer'}, name
        assert [t for t, _ in st] == [START_NS + k * period for k in range(len(st))], name
    # a tick runs before the frame of its instant: vision output is at least a period old
    g_ages = [(p.emitted_ns - p.stamp_ns) / 1e6 for p in grid.preds['fused'] if p.modalities & 1]
    assert g_ages and min(g_ages) >= period / 1e6 - 1e-6, g_ages
    assert min(grid.output_age_ms) > 0


def test_offline_pipeline_defers_a_second_face_within_the_spacing(bundle):
    """Two faces in one frame: the first arrival steps at once, the second is fused by the
    one-shot 1/max_step_rate_hz later (or by an earlier step), as in fusion_node."""
    from emotion_fusion.config import FusionConfig
    from emotion_fusion.features import MODALITY_VISION, Feature
    from emotion_runtime.model_bundle import ModelBundle
    from emotion_training.eval_bag import OfflinePipeline
    b = ModelBundle.load(bundle)
    pipe = OfflinePipeline(b, FusionConfig(max_step_rate_hz=20.0))     # spacing 50 ms
    t0 = START_NS
    pipe.advance(t0)                                                    # timer tick at t0

    def frame(t, ids):
        pipe.advance(t)
        for fid in ids:
            pipe._add_vision(Feature(t, fid, MODALITY_VISION,
                                     np.zeros(b.vision_embedding_size, np.float32), 1.0, True,
                                     'cam', t), t)

    frame(t0 + 10_000_000, ['a', 'b'])
    frame(t0 + 40_000_000, ['a'])          # still pending: the one-shot is armed already
    frame(t0 + 90_000_000, ['a', 'b'])
    pipe.advance(t0 + 350_000_000)
    ms = [((t - t0) // 1_000_000, kind) for t, kind in pipe.steps['fused']]
    # ticks at 100 and 200 skip (vision-triggered steps at 60 and 110), the one at 300 steps
    assert ms == [(0, 'timer'), (10, 'vision'), (60, 'deferred'), (110, 'deferred'),
                  (300, 'timer')], ms
    assert ms == [((t - t0) // 1_000_000, k) for t, k in pipe.steps['vision_only']]
    assert [(t - t0) // 1_000_000 for t, _ in pipe.steps['voice_only']] == [0, 100, 200, 300]
    c = pipe.step_counts()['fused']
    assert (c['vision_deferrals'], c['timer_skipped']) == (2, 2)
