"""The four nodes as real processes over Fast DDS (emotion_test_tools harness), real inputs."""
import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf
from perception_media import moving_face_frames

from emotion_test_tools.dds import NodeProcess, RosHarness, isolated_domain, ros_env
from emotion_test_tools.tiny_bundle import DEFAULT_LABELS

rclpy = pytest.importorskip('rclpy')
from builtin_interfaces.msg import Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from emotion_msgs.msg import AudioChunk, EmotionFeature, FaceArray  # noqa: E402
from emotion_perception.audio_format import encode_pcm  # noqa: E402
from emotion_perception.image_conversion import numpy_to_image  # noqa: E402
from emotion_perception.ros_common import reliable_qos, sensor_qos, stamp_to_seconds  # noqa: E402

PKG = 'emotion_perception'
LARGE_IMAGE_PROFILE = Path(__file__).resolve().parents[1] / 'config' / 'fastdds_large_images.xml'


@pytest.fixture(autouse=True)
def large_image_transport(monkeypatch):
    """Every participant of these tests (node processes via ros_env, and the in-process harness)
    uses the package's Fast DDS profile: with the kernel's default 208 kB UDP buffers about half
    of the 921 kB images are lost on a busy machine (see config/fastdds_large_images.xml)."""
    monkeypatch.setenv('FASTRTPS_DEFAULT_PROFILES_FILE', str(LARGE_IMAGE_PROFILE))


def _secs(msg) -> float:
    return stamp_to_seconds(msg.header.stamp)


def _diag_values(diags, node_name):
    """key -> value of the newest DiagnosticStatus of ``node_name``."""
    for arr in reversed(diags):
        for st in arr.status:
            if st.name.startswith(node_name):
                return {kv.key: kv.value for kv in st.values}, st
    return {}, None


def _wait_publishers(ros, topic, timeout=15.0):
    return ros.wait_for(lambda: ros.node.count_publishers(topic) >= 1, timeout)


def test_face_node_tracks_the_moving_photo_with_one_id(test_bundle):
    frames = moving_face_frames(30)
    with isolated_domain() as d, \
            NodeProcess(PKG, 'face_node', params={'model_bundle': str(test_bundle),
                                                  'publish_debug_image': True},
                        env=ros_env(d)) as node, RosHarness() as ros:
        faces = ros.collect(FaceArray, 'faces', reliable_qos(50))
        feats = ros.collect(EmotionFeature, 'vision/features', sensor_qos(100))
        debug = ros.collect(Image, 'debug_image', sensor_qos(5))
        diags = ros.collect(DiagnosticArray, '/diagnostics', 20)
        pub = ros.publisher(Image, 'image_raw', sensor_qos(1))
        assert ros.wait_for_subscribers(pub), node.output()
        assert _wait_publishers(ros, 'faces') and _wait_publishers(ros, 'vision/features')
        for i, frame in enumerate(frames):
            msg = numpy_to_image(frame, 'bgr8', Image())
            msg.header.stamp = Time(sec=1000 + i, nanosec=500)
            msg.header.frame_id = 'cam'
            for _ in range(10):     # best effort: resend when a 900 kB frame was lost on the wire
                pub.publish(msg)
                if ros.wait_for(lambda i=i: len({_secs(f) for f in faces}) > i, 2.0):
                    break
            assert len({_secs(f) for f in faces}) > i, node.output()
        with_face = [f for f in faces if f.faces]
        # the first sighting is tentative (min_hits=2), so at most 29 frames report the face
        assert len(with_face) >= 27, f'faces in {len(with_face)}/30 frames'
        assert all(len(f.faces) <= 1 for f in faces) and len({_secs(f) for f in faces}) == 30
        assert {f.faces[0].id for f in with_face} == {'f1'}
        assert all(f.header.frame_id == 'cam' and f.faces[0].image_width == 640
                   for f in with_face)
        ages = [f.faces[0].age for f in sorted(with_face, key=_secs)]
        assert ages == sorted(ages) and ages[0] == 2
        assert ros.wait_for(lambda: len(feats) >= len(with_face), 5.0)
        by_stamp = {}
        for e in feats:
            by_stamp.setdefault(_secs(e), []).append(e)
        processed = {}
        for f in with_face:           # a resent frame may have been processed twice
            processed[_secs(f)] = processed.get(_secs(f), 0) + 1
        for f in with_face:
            got = by_stamp.get(_secs(f), [])
            assert len(got) == processed[_secs(f)], f'{len(got)} features for frame {_secs(f)}'
            e = got[0]
            assert e.source_id == 'f1' and e.modality == EmotionFeature.MODALITY_VISION
            assert len(e.embedding) == 16 and len(e.logits) == len(e.labels) == len(DEFAULT_LABELS)
            assert e.quality == pytest.approx(f.faces[0].confidence)
        assert debug and debug[-1].encoding == 'bgr8'
        # a lit photo: the detector never had to brighten a frame (mtcnn_low_light_gain)
        assert ros.wait_for(lambda: 'frames_brightened' in _diag_values(diags, 'face_node')[0],
                            5.0), node.output()
        assert _diag_values(diags, 'face_node')[0]['frames_brightened'] == '0'
        assert node.alive()
        assert node.stop() == 0, node.output()        # Ctrl-C: clean exit


def test_face_node_without_model_does_not_configure(tmp_path):
    """Lifecycle: no valid bundle = configure FAILURE; the reason is logged and, with autostart,
    the node exits with code 1 instead of running half-configured."""
    with isolated_domain() as d:
        node = NodeProcess(PKG, 'face_node', params={'model_bundle': str(tmp_path / 'none')},
                           env=ros_env(d))
        assert node.proc.wait(30) == 1, node.output()
        node.close()
    assert 'configure failed: model bundle not loaded' in node.output()
    assert 'does not exist' in node.output()


def test_camera_node_publishes_a_video_file(tmp_path):
    video = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 10.0, (640, 480))
    for i in range(6):
        writer.write(np.full((480, 640, 3), 30 * i, np.uint8))
    writer.release()
    calib = tmp_path / 'cam.yaml'
    from test_camera_source import CALIBRATION
    calib.write_text(CALIBRATION)
    with isolated_domain() as d, \
            NodeProcess(PKG, 'camera_node', params={'source': str(video), 'rate': 20.0,
                                                    'frame_id': 'head_cam',
                                                    'calibration_file': str(calib)},
                        env=ros_env(d)) as node, RosHarness() as ros:
        images = ros.collect(Image, 'image_raw', sensor_qos(50))
        infos = ros.collect(CameraInfo, 'camera_info', sensor_qos(50))
        assert ros.wait_for(lambda: len(images) >= 15, 30.0), node.output()
        stamps = [_secs(m) for m in images]
        assert all(b > a for a, b in zip(stamps, stamps[1:]))
        assert abs(stamps[-1] - time.time()) < 10.0
        m = images[-1]
        assert (m.width, m.height, m.encoding, m.header.frame_id) == (640, 480, 'bgr8', 'head_cam')
        assert len(m.data) == m.step * m.height
        assert len({round(float(np.frombuffer(bytes(x.data), np.uint8).mean())) for x in images}) > 3
        assert ros.wait_for(lambda: len(infos) >= 5, 5.0)
        assert infos[-1].k[0] == 600.0 and infos[-1].header.frame_id == 'head_cam'
        assert _secs(infos[-1]) in set(stamps) or _secs(infos[-1]) > stamps[0]
        assert node.alive()
        assert node.stop() == 0, node.output()


def test_microphone_file_to_vocal_node_marks_speech(speech_file, test_bundle):
    path, start, end = speech_file
    duration = sf.info(str(path)).duration
    with isolated_domain() as d, RosHarness() as ros:
        audio = ros.collect(AudioChunk, 'audio', sensor_qos(200))
        feats = ros.collect(EmotionFeature, 'voice/features', sensor_qos(100))
        with NodeProcess(PKG, 'vocal_node', params={'model_bundle': str(test_bundle)},
                         env=ros_env(d)) as vocal:
            assert _wait_publishers(ros, 'voice/features'), vocal.output()
            assert ros.wait_for(lambda: ros.node.count_subscribers('audio') >= 2, 15.0)
            # The file waits for both subscribers (vocal_node and this harness), so discovery
            # does not eat its start even on a loaded machine.
            with NodeProcess(PKG, 'microphone_node',
                             params={'file': str(path), 'file_wait_subscribers': 2},
                             env=ros_env(d)) as mic:
                expected = int((duration - 1.0) / 0.5) + 1   # 16 windows of 1 s every 0.5 s
                finished = ros.wait_for(lambda: 'file finished' in mic.output(), duration + 20)
                ros.wait_for(lambda: len(feats) >= expected, 3.0)
                assert 'starting the file' in mic.output(), mic.output()
                # Best-effort QoS may still drop a chunk or two under load.
                assert finished and len(feats) >= expected - 2, \
                    f'{len(feats)} features\n{mic.output()}\n{vocal.output()}'
                assert mic.alive() and vocal.alive()
        assert all(a.sample_rate == 16000 and a.encoding == 'S16LE' for a in audio)
        # Stream time of the file's first sample: find a received chunk's place in the file
        # (chunks published before discovery completed are lost, so the first one we see need
        # not be the file's first) and go back by its sample offset.
        pcm = sf.read(str(path), dtype='int16')[0].tobytes()
        chunk_bytes = len(audio[0].data)
        offsets = {pcm[k:k + chunk_bytes]: k // 2 for k in range(0, len(pcm), chunk_bytes)}
        a0 = next(a for a in audio if bytes(a.data) in offsets)
        t0 = _secs(a0) - offsets[bytes(a0.data)] / 16000
        stamps = sorted(_secs(a) for a in audio)
        assert np.allclose(np.diff(stamps), 0.1, atol=1e-6) or len(stamps) < 2 or \
            all(round((b - a) / 0.1, 6) == round((b - a) / 0.1) for a, b in zip(stamps, stamps[1:]))
        checked_speech = checked_silence = 0
        for f in feats:
            a = _secs(f) - t0
            assert f.source_id == 'voice' and f.modality == EmotionFeature.MODALITY_VOICE
            assert len(f.embedding) == 16 and 0.0 <= f.quality <= 1.0
            if a + 1.0 < start - 0.05 or a > end + 0.4:
                assert not f.speech, f'window at {a:.2f} s is silence'
                checked_silence += 1
            elif a > start + 0.2 and a + 1.0 < end - 0.2:
                assert f.speech, f'window at {a:.2f} s is speech'
                checked_speech += 1
        assert checked_speech >= 3 and checked_silence >= 3


def test_vocal_node_survives_bad_and_irregular_audio(speaker_bundle):
    """(With a speaker-normalised bundle: the node also reports its online calibration.)"""
    rate = 16000
    with isolated_domain() as d, \
            NodeProcess(PKG, 'vocal_node', params={'model_bundle': str(speaker_bundle)},
                        env=ros_env(d)) as node, RosHarness() as ros:
        diags = ros.collect(DiagnosticArray, '/diagnostics', 20)
        feats = ros.collect(EmotionFeature, 'voice/features', sensor_qos(100))
        pub = ros.publisher(AudioChunk, 'audio', reliable_qos(100))
        assert ros.wait_for_subscribers(pub), node.output()

        def chunk(t, x, enc='S16LE', r=rate):
            m = AudioChunk(sample_rate=r, channels=1, encoding=enc, data=encode_pcm(x, enc)
                           if np.isfinite(x).all() else x.astype('<f4').tobytes())
            m.header.stamp = Time(sec=int(t), nanosec=int(round((t % 1) * 1e9)))
            return m

        tone = (0.1 * np.sin(np.arange(1600) * 0.1)).astype(np.float32)
        nan = tone.copy()
        nan[3] = np.nan
        msgs = [chunk(100 + k * 0.1, tone) for k in range(15)]
        msgs += [msgs[-1], chunk(101.5, nan, 'F32LE'), chunk(101.5, tone)]     # dup, NaN
        bad = AudioChunk(sample_rate=rate, channels=1, encoding='S16LE', data=b'\x00\x01\x02')
        msgs += [bad, chunk(105.0, tone)]                                       # ragged, reset
        msgs += [chunk(105.1 + k * 0.1, np.zeros(4410, np.float32), r=44100) for k in range(15)]
        for m in msgs:
            pub.publish(m)
            time.sleep(0.01)
        assert ros.wait_for(lambda: _diag_values(diags, 'vocal_node')[0].get('chunks_rate_changed')
                            == '1', 10.0), node.output()
        values, _ = _diag_values(diags, 'vocal_node')
        assert values['chunks_duplicate'] == '1' and values['chunks_gap_reset'] == '1'
        assert values['chunks_rejected'] == '2'
        assert float(values['speaker_calibration_seconds']) >= 0.0
        out = node.output()
        assert 'NaN or infinite' in out and 'whole number' in out
        assert node.alive()
        assert any(_secs(f) >= 105.1 for f in feats) and all(f.source_id == 'voice' for f in feats)
        assert node.stop() == 0, node.output()


@pytest.mark.parametrize('exe,param', [('face_node', {'detection_scale': 5.0}),
                                       ('camera_node', {'rate': 0.0}),
                                       ('microphone_node', {'encoding': 'U8'}),
                                       ('vocal_node', {'min_speech_fraction': 2.0})])
def test_bad_parameter_is_a_clear_startup_error(exe, param):
    with isolated_domain() as d:
        node = NodeProcess(PKG, exe, params=param, env=ros_env(d))
        node.proc.wait(30)
        name = next(iter(param))
        assert node.proc.returncode == 2, node.output()
        assert f'invalid parameter(s): {name}=' in node.output()
        log = node.log_path
        assert os.path.exists(log)
        node.close()                     # the log file leaves /tmp, its text stays readable
        assert not os.path.exists(log) and f'{name}=' in node.output()


def test_microphone_without_device_keeps_retrying():
    with isolated_domain() as d, \
            NodeProcess(PKG, 'microphone_node', params={'device': 'no such mic',
                                                        'reconnect_initial': 0.2},
                        env=ros_env(d)) as node, RosHarness() as ros:
        diags = ros.collect(DiagnosticArray, '/diagnostics', 10)
        # the first status may still be the lifecycle's "unconfigured" one: wait for the error
        assert ros.wait_for(lambda: getattr(_diag_values(diags, 'microphone_node')[1], 'level',
                                            None) == b'\x02', 15.0), node.output()
        _, status = _diag_values(diags, 'microphone_node')
        assert status.level == b'\x02' and ('device' in status.message
                                            or 'PortAudio' in status.message)
        assert node.alive()
        assert node.stop() == 0
        assert 'retrying in' in node.output()


def test_vocal_node_without_the_vad_model_falls_back_to_energy(test_bundle, tmp_path):
    """The Silero file missing ($EMOTION_VAD_MODEL pointing nowhere): the node runs on the energy
    VAD and says so as an ERROR on /diagnostics naming the file."""
    missing = tmp_path / 'gone' / 'silero_vad.onnx'
    with isolated_domain() as d, \
            NodeProcess(PKG, 'vocal_node', params={'model_bundle': str(test_bundle)},
                        env=dict(ros_env(d), EMOTION_VAD_MODEL=str(missing))) as node, \
            RosHarness() as ros:
        diags = ros.collect(DiagnosticArray, '/diagnostics', 20)
        # the first status may still be the lifecycle's "unconfigured" one (no VAD yet): wait
        # for the configured node's
        assert ros.wait_for(lambda: 'vad' in _diag_values(diags, 'vocal_node')[0], 30.0), \
            node.output()
        values, status = _diag_values(diags, 'vocal_node')
        assert values['vad'] == 'energy' and str(missing) in values['vad_error']
        assert status.level == b'\x02' and str(missing) in status.message
        assert node.alive() and str(missing) in node.output()
        assert node.stop() == 0, node.output()


def test_camera_and_microphone_files_play_on_one_clock(tmp_path):
    """`file_start_time` given to both nodes: frame n is stamped start + n / rate and shows frame n
    of the file; each chunk's stamp says which samples of the WAV it holds; nothing is stamped
    before the start, however long the processes took to come up."""
    video = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 20.0, (320, 240))
    for i in range(40):
        writer.write(np.full((240, 320, 3), 5 * i, np.uint8))   # brightness names the frame
    writer.release()
    wav = tmp_path / 'ramp.wav'
    rate = 16000
    sf.write(wav, np.arange(3 * rate, dtype=np.float32) / (3 * rate), rate, subtype='FLOAT')
    start = time.time() + 4.0
    with isolated_domain() as d, RosHarness() as ros:
        images = ros.collect(Image, 'image_raw', sensor_qos(200))
        chunks = ros.collect(AudioChunk, 'audio', sensor_qos(200))
        with NodeProcess(PKG, 'camera_node', env=ros_env(d),
                         params={'source': str(video), 'rate': 20.0, 'width': 0, 'height': 0,
                                 'file_start_time': start}) as cam, \
                NodeProcess(PKG, 'microphone_node', env=ros_env(d),
                            params={'file': str(wav), 'encoding': 'F32LE',
                                    'file_start_time': start}) as mic:
            assert ros.wait_for(lambda: len(images) >= 30 and len(chunks) >= 15, 40.0), \
                cam.output() + mic.output()
            assert 'waiting for file_start_time' in cam.output()
            assert cam.stop() == 0 and mic.stop() == 0
    assert min(_secs(m) for m in images) >= start - 1e-6
    for m in images:
        n = round((_secs(m) - start) * 20.0)
        assert abs(_secs(m) - (start + n / 20.0)) < 1e-6
        level = float(np.frombuffer(bytes(m.data), np.uint8).mean())
        assert abs(level - 5 * (n % 40)) < 3, (n, level)
    for c in chunks:
        first = np.frombuffer(bytes(c.data), np.float32)[0]
        k = round((_secs(c) - start) * rate)
        assert k >= 0 and abs(first - k / (3 * rate)) < 1e-4, (k, first)
