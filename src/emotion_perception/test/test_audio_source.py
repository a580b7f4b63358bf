"""audio_source: file blocks with contiguous stamps, looping, and clear errors."""
import numpy as np
import pytest
import soundfile as sf

from emotion_perception.audio_source import AudioSourceError, DeviceAudioSource, FileAudioSource, parse_device


def test_file_blocks_are_contiguous(tmp_path):
    p = tmp_path / 'a.flac'
    sf.write(p, np.linspace(-0.5, 0.5, 16000 * 2 + 100, dtype=np.float32), 16000)
    clock = iter(np.arange(100.0, 200.0, 0.01))
    src = FileAudioSource(str(p), 0.1, clock=lambda: next(clock))
    blocks = []
    while (b := src.next_block()) is not None:
        blocks.append(b)
    assert len(blocks) == 21 and blocks[-1].samples.shape == (100, 1)
    starts = [b.start_time for b in blocks]
    assert np.allclose(np.diff(starts), 0.1) and src.finished
    assert np.concatenate([b.samples[:, 0] for b in blocks]).size == 32100


def test_file_loop_and_channel_mix(tmp_path):
    p = tmp_path / 'st.wav'
    sf.write(p, np.stack([np.full(1000, 0.2), np.full(1000, 0.4)], 1).astype(np.float32), 8000)
    src = FileAudioSource(str(p), 0.05, loop=True, channels=1)
    blocks = [src.next_block() for _ in range(6)]      # 400-sample blocks over a 1000-sample file
    assert all(b.samples.shape == (400, 1) for b in blocks)
    assert src.loops >= 2 and np.allclose(blocks[0].samples, 0.3, atol=1e-3)
    assert blocks[5].start_time - blocks[0].start_time == pytest.approx(0.25)


def test_bad_files_fail_clearly(tmp_path):
    with pytest.raises(AudioSourceError, match='cannot read audio file'):
        FileAudioSource(str(tmp_path / 'missing.wav'), 0.1)
    junk = tmp_path / 'junk.wav'
    junk.write_bytes(b'RIFF\x00\x00garbage')
    with pytest.raises(AudioSourceError, match='cannot read audio file'):
        FileAudioSource(str(junk), 0.1)
    nan = tmp_path / 'nan.wav'
    sf.write(nan, np.array([0.0, np.nan, 0.1], np.float32), 16000, subtype='FLOAT')
    # NaN/inf samples are replaced by 0 and counted, so one bad sample does not stop the file
    src = FileAudioSource(str(nan), 0.1)
    assert src.non_finite_samples == 1
    assert np.array_equal(src.data[:, 0], np.array([0.0, 0.0, 0.1], np.float32))


def test_missing_device_is_a_clear_error():
    assert parse_device('') is None and parse_device('2') == 2 and parse_device('USB') == 'USB'
    src = DeviceAudioSource('no such microphone', 16000, 1, 1600)
    with pytest.raises(AudioSourceError) as err:
        src.open()
    assert 'no audio input device' in str(err.value) or 'PortAudio' in str(err.value)
    assert not src.active


def test_device_callback_stamps_from_the_adc_clock():
    """The callback path, driven by hand as PortAudio would (no device here)."""
    src = DeviceAudioSource(None, 16000, 1, 160, clock=lambda: 1000.0)
    src._offset = 900.0                               # our clock - stream clock
    info = type('T', (), {'inputBufferAdcTime': 12.5})()
    src._callback(np.ones((160, 1), np.float32), 160, info, None)
    b = src.get(0.1)
    assert b.start_time == pytest.approx(912.5) and b.samples.shape == (160, 1)
    assert src.get(0.01) is None
