"""Audit rows as node processes over Fast DDS: no single message wedges a node, and a wrong model
cannot pass as right (each test failed on the code before the hardening)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emotion_test_tools.dds import NodeProcess, RosHarness, isolated_domain, ros_env
from emotion_test_tools.tiny_bundle import DEFAULT_LABELS, make_tiny_bundle

rclpy = pytest.importorskip('rclpy')
from builtin_interfaces.msg import Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402

from emotion_msgs.msg import AudioChunk, EmotionFeature  # noqa: E402
from emotion_perception.audio_format import encode_pcm  # noqa: E402
from emotion_perception.ros_common import reliable_qos, sensor_qos, stamp_to_seconds  # noqa: E402
from emotion_runtime.model_bundle import sha256_of  # noqa: E402

PKG = 'emotion_perception'
RATE = 16000
T0 = 1000.0


def _diag(diags, node_name):
    """(values, status, receive time) of the newest DiagnosticStatus of ``node_name``."""
    for arr, at in reversed(diags):
        for st in arr.status:
            if st.name.startswith(node_name):
                return {kv.key: kv.value for kv in st.values}, st, at
    return {}, None, 0.0


def _collect_diags(ros):
    diags: list = []
    ros.node.create_subscription(DiagnosticArray, '/diagnostics',
                                 lambda m: diags.append((m, time.monotonic())), 50)
    return diags


def _chunk(t, x, rate=RATE):
    m = AudioChunk(sample_rate=rate, channels=1, encoding='S16LE', data=encode_pcm(x, 'S16LE'))
    m.header.stamp = Time(sec=int(t), nanosec=int(round((t % 1) * 1e9)) % 1_000_000_000)
    return m


def _tone(seconds=0.1):
    return (0.2 * np.sin(np.arange(int(seconds * RATE)) * 0.3)).astype(np.float32)


def _rss_mb(pid: int) -> float:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024.0
    return 0.0


class VocalRig:
    """vocal_node (tiny bundle: 1 s windows every 0.5 s) + a harness publishing audio."""

    def __init__(self, ros, node):
        self.ros, self.node = ros, node
        self.diags = _collect_diags(ros)
        self.feats = ros.collect(EmotionFeature, 'voice/features', sensor_qos(200))
        self.pub = ros.publisher(AudioChunk, 'audio', reliable_qos(100))
        assert ros.wait_for_subscribers(self.pub, timeout=30.0), node.output()
        assert ros.wait_for(lambda: _diag(self.diags, 'vocal_node')[0].get('lifecycle_state')
                            == 'active', 60.0), node.output()

    def stream(self, t, seconds):
        for k in range(int(round(seconds / 0.1))):
            self.pub.publish(_chunk(t + 0.1 * k, _tone()))
            time.sleep(0.01)
        return t + seconds

    def value(self, key):
        return _diag(self.diags, 'vocal_node')[0].get(key)


@pytest.fixture
def vocal(test_bundle):
    with isolated_domain() as d, \
            NodeProcess(PKG, 'vocal_node', params={'model_bundle': str(test_bundle)},
                        env=ros_env(d)) as node, RosHarness() as ros:
        yield VocalRig(ros, node)


def test_vocal_node_survives_a_chunk_with_sample_rate_1(vocal):
    """Old code: the hop rounded to 0 samples, push() looped forever, /diagnostics stopped."""
    vocal.pub.publish(_chunk(T0, _tone(), rate=1))
    sent = time.monotonic()
    assert vocal.ros.wait_for(lambda: vocal.value('rejected_sample_rate') == '1', 10.0), \
        vocal.node.output()
    # diagnostics keep flowing: a status arrives within 2 s of any moment after the bad chunk
    mark = time.monotonic()
    assert vocal.ros.wait_for(lambda: _diag(vocal.diags, 'vocal_node')[2] > mark, 2.5)
    assert _diag(vocal.diags, 'vocal_node')[2] > sent
    vocal.stream(T0 + 10.0, 2.0)
    assert vocal.ros.wait_for(lambda: any(stamp_to_seconds(f.header.stamp) >= T0 + 10.0
                                          for f in vocal.feats), 15.0), vocal.node.output()
    assert vocal.node.alive()


def test_vocal_node_refuses_sample_rate_4e9_with_bounded_memory(vocal):
    """Old code: gap filling at the claimed rate allocated gigabytes."""
    t = vocal.stream(T0, 0.5)
    rss0 = _rss_mb(vocal.node.proc.pid)
    for k in range(3):                    # a gap after each: filled at 4e9 Hz by the old code
        vocal.pub.publish(_chunk(t + 0.3 * (k + 1), _tone(), rate=4_000_000_000))
    assert vocal.ros.wait_for(lambda: vocal.value('rejected_sample_rate') == '3', 15.0), \
        vocal.node.output()
    assert _rss_mb(vocal.node.proc.pid) - rss0 < 50.0
    vocal.stream(t + 2.0, 2.0)
    assert vocal.ros.wait_for(lambda: any(stamp_to_seconds(f.header.stamp) >= t + 2.0
                                          for f in vocal.feats), 15.0), vocal.node.output()
    assert vocal.node.alive()


def test_vocal_node_resets_on_a_60s_backward_stamp_step(vocal):
    """Old code: every chunk of the next 60 s was "reordered": no windows for a minute."""
    t = vocal.stream(T0 + 100.0, 2.0)
    assert vocal.ros.wait_for(lambda: len(vocal.feats) >= 1, 15.0), vocal.node.output()
    back = t - 60.0
    vocal.stream(back, 2.0)              # window (1 s) + hop (0.5 s) + a margin
    assert vocal.ros.wait_for(lambda: any(back <= stamp_to_seconds(f.header.stamp) < back + 2.0
                                          for f in vocal.feats), 15.0), vocal.node.output()
    assert vocal.ros.wait_for(lambda: vocal.value('chunks_backstep_reset') == '1', 5.0)
    assert vocal.value('chunks_reordered') == '0'


def test_microphone_node_on_a_wav_with_a_nan_sample_keeps_publishing(tmp_path):
    """Old code: the worker thread died with a traceback; /diagnostics said "starting" forever."""
    wav = tmp_path / 'nan.wav'
    x = _tone(1.0)
    x[100] = np.nan
    sf.write(wav, x, RATE, subtype='FLOAT')
    with isolated_domain() as d, \
            NodeProcess(PKG, 'microphone_node', params={'file': str(wav), 'loop': True},
                        env=ros_env(d)) as node, RosHarness() as ros:
        diags = _collect_diags(ros)
        audio = ros.collect(AudioChunk, 'audio', sensor_qos(100))
        assert ros.wait_for(lambda: len(audio) >= 5, 30.0), node.output()
        assert ros.wait_for(lambda: _diag(diags, 'microphone_node')[0].get(
            'non_finite_samples_replaced') == '1', 10.0), node.output()
        values, status, _ = _diag(diags, 'microphone_node')
        assert values['state'] == 'running' and status.level != b'\x02'
        assert 'Traceback' not in node.output()
        assert node.alive()


def _bundle_variant(src: Path, dst: Path, kind: str, node: str) -> Path:
    """A copy of the tiny bundle made wrong in one way."""
    if kind == 'swapped_labels':
        labels = list(DEFAULT_LABELS)
        labels[3], labels[5] = labels[5], labels[3]          # happy <-> sad
        return make_tiny_bundle(dst, labels=labels)
    make_tiny_bundle(dst)
    manifest = json.loads((dst / 'manifest.json').read_text())
    key = {'face_node': 'vision', 'vocal_node': 'vocal', 'fusion_node': 'fusion'}[node]
    fname = manifest[key]['file']
    if kind == 'truncated_onnx':                  # sha256 updated: onnxruntime must refuse it
        f = dst / fname
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
        manifest['files'][fname] = sha256_of(f)
    else:                                         # wrong_sha256
        manifest['files'][fname] = '0' * 64
    (dst / 'manifest.json').write_text(json.dumps(manifest, indent=1))
    return dst


@pytest.mark.parametrize('exe', ['face_node', 'vocal_node'])
@pytest.mark.parametrize('kind,message', [('swapped_labels', 'label order'),
                                          ('truncated_onnx', 'onnxruntime cannot load'),
                                          ('wrong_sha256', 'sha256 mismatch')])
def test_a_wrong_model_fails_configure_and_exits_1(tmp_path, test_bundle, exe, kind, message):
    """Old code: a swapped label order was published as is ("sad" as "happy")."""
    bundle = _bundle_variant(test_bundle, tmp_path / 'bundle', kind, exe)
    with isolated_domain() as d:
        node = NodeProcess(PKG, exe, params={'model_bundle': str(bundle)}, env=ros_env(d))
        assert node.proc.wait(60) == 1, node.output()
        node.close()
    assert 'configure failed' in node.output() and message in node.output(), node.output()
