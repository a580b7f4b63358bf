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


def test_file_start_time_puts_the_first_sample_on_the_clock(tmp_path):
    p = tmp_path / 'ramp.wav'
    sf.write(p, np.arange(8000, dtype=np.float32) / 8000, 8000)      # 1 s, sample k = k / 8000
    now = [49.0]
    src = FileAudioSource(str(p), 0.1, clock=lambda: now[0], start_time=50.0)
    assert src.wait_time() == pytest.approx(1.1)      # first block complete at 50.1
    now[0] = 50.1
    b = src.next_block()
    assert b.start_time == 50.0 and b.samples[0, 0] == 0.0 and src.skipped_blocks == 0
    # a source first read 0.35 s after its start skips the three blocks already past, so the
    # sample it plays is the one due now and its stamp says so
    now[0] = 50.35
    late = FileAudioSource(str(p), 0.1, clock=lambda: now[0], start_time=50.0)
    b = late.next_block()
    assert late.skipped_blocks == 3
    assert b.start_time == pytest.approx(50.3)
    assert b.samples[0, 0] == pytest.approx(2400 / 8000, abs=1e-3)
    # without a start time the first call fixes the clock, as before
    plain = FileAudioSource(str(p), 0.1, clock=lambda: now[0])
    assert plain.next_block().start_time == 50.35 and plain.skipped_blocks == 0


def test_late_start_past_the_end_of_a_looping_file(tmp_path):
    p = tmp_path / 'short.wav'
    sf.write(p, np.arange(800, dtype=np.float32) / 800, 8000)         # 0.1 s
    now = [10.25]
    src = FileAudioSource(str(p), 0.05, loop=True, clock=lambda: now[0], start_time=10.0)
    b = src.next_block()
    assert src.skipped_blocks == 5 and src.loops == 2
    assert b.start_time == pytest.approx(10.25) and b.samples[0, 0] == pytest.approx(400 / 800, abs=1e-3)
    once = FileAudioSource(str(p), 0.05, clock=lambda: now[0], start_time=10.0)
    assert once.next_block() is None and once.finished   # started after its end: nothing left


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
