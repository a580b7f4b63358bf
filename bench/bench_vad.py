#!/usr/bin/env python3
"""Bench of the voice-activity detectors: frame F1 in noise and CPU cost (printed, not asserted).

Signal: about 60 s of speech with pauses, mixed into noise at 0, 5, 10 and 20 dB SNR.
* Speech: RAVDESS clips from ``$EMOTION_DATA`` or ``../shared/data`` (16 actors, 8 female and 8
  male, all emotions; each clip keeps its own leading/trailing studio silence and is followed by
  0.3-1.5 s of digital silence); without the data, espeak-ng sentences (``--speech espeak``);
  the source is printed.
* Ground truth: 20 ms frames of the CLEAN speech whose energy is within 30 dB of the track's
  loud frames (95th percentile of frame levels), with pauses up to 100 ms bridged (between-word
  gaps count as speech, as a listener hears them).
* Noise, generated (seeded): ``fan`` = 50 Hz mains hum with harmonics + a 24 Hz blade-pass
  rumble (amplitude-modulated) + low-pass (brown-ish) noise + a weaker broadband (white) hiss;
  ``babble`` = 6 sources of noise shaped to the long-term spectrum of speech (from RAVDESS
  actors not in the track, or a -6 dB/octave tilt above 500 Hz without the data), each gated by
  a random syllable-rate (3-6 Hz) envelope and 1-3 s phrase on/off gating.
  SNR = speech power over its ground-truth frames / mean noise power.
* Detectors, fed in 0.1 s chunks at 16 kHz as vocal_node does: ``SileroVad`` (the shipped
  silero_vad.onnx, onnxruntime 1 thread, threshold, hangover and pre-roll as vocal_node's
  defaults) and
  ``EnergyVad`` (vocal_node's energy defaults).  Frame F1 against the ground truth.
* Cost: process CPU time / audio time (% of one core), 16 kHz and 48 kHz (resampled in the VAD).

    source scripts/env.sh && python bench/bench_vad.py [--seconds 60] [--speech auto|ravdess|espeak]
        [--silero-thresholds 0.3,0.5 --silero-hangovers 0.1,0.3 --silero-prerolls 0,0.08]
        (a grid of Silero settings)
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile as sf
from scipy.signal import lfilter

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / 'src' / 'emotion_perception'), str(REPO / 'src' / 'emotion_runtime'),
                str(REPO / 'training')]

from emotion_perception.node_params import VOCAL_PARAMS  # noqa: E402
from emotion_perception.voice_activity import EnergyVad, SileroModel, SileroVad  # noqa: E402
from emotion_runtime.preprocess import resample  # noqa: E402
from emotion_training import room_noise  # noqa: E402

RATE, FRAME = 16000, 320          # 20 ms frames: vocal_node's vad_frame_seconds
SNRS = (0, 5, 10, 20)
DEFAULTS = {s.name: s.default for s in VOCAL_PARAMS}
ESPEAK_TEXTS = ['Kids are talking by the door.', 'Dogs are sitting by the door.',
                'I did not expect to see you here today.', 'Please put the red box on the table.',
                'The weather was lovely this morning.', 'Where did you leave the keys?']


def data_root() -> pathlib.Path:
    return pathlib.Path(os.environ.get('EMOTION_DATA') or REPO.parent / 'shared' / 'data')


def ravdess_clips(first_actor: int, n_actors: int, per_actor: int, rng) -> list:
    root = data_root() / 'ravdess'
    clips = []
    for a in range(first_actor, first_actor + n_actors):
        files = sorted((root / f'Actor_{a:02d}').glob('*.flac'))
        for k in rng.choice(len(files), size=min(per_actor, len(files)), replace=False):
            x, sr = sf.read(files[k], dtype='float32')
            clips.append(resample(x, sr, RATE) if sr != RATE else x)
    return clips


def espeak_clips() -> list:
    clips = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(ESPEAK_TEXTS * 2):
            path = pathlib.Path(tmp) / f'{i}.wav'
            voice = ['en-us', 'en-gb', 'en-us+f3', 'en-gb+f2'][i % 4]
            subprocess.run(['espeak-ng', '-v', voice, '-w', str(path), text], check=True,
                           capture_output=True)
            x, sr = sf.read(path, dtype='float32')
            clips.append(resample(x, sr, RATE))
    return clips


def frame_levels(x: np.ndarray) -> np.ndarray:
    n = x.size // FRAME
    f = x[:n * FRAME].reshape(n, FRAME).astype(np.float64)
    return 10 * np.log10(np.mean(f ** 2, axis=1) + 1e-12)


def bridge(flags: np.ndarray, max_gap: int) -> np.ndarray:
    out, idx = flags.copy(), np.flatnonzero(flags)
    for a, b in zip(idx[:-1], idx[1:]):
        if 1 < b - a <= max_gap + 1:
            out[a:b] = True
    return out


def build_track(clips: list, seconds: float, rng) -> tuple[np.ndarray, np.ndarray]:
    parts, total = [np.zeros(int(0.5 * RATE), np.float32)], 0.5
    for c in clips:
        if total >= seconds:
            break
        c = c / (np.sqrt(np.mean(c ** 2)) + 1e-9) * 0.05 * rng.uniform(0.6, 1.4)   # level spread
        gap = np.zeros(int(rng.uniform(0.3, 1.5) * RATE), np.float32)
        parts += [c.astype(np.float32), gap]
        total += (c.size + gap.size) / RATE
    speech = np.concatenate(parts)
    levels = frame_levels(speech)
    truth = levels > max(np.percentile(levels, 95) - 30.0, -80.0)
    return speech, bridge(truth, 5)


def fan_noise(n: int, rng) -> np.ndarray:
    return room_noise.fan_noise(n, rng, RATE)


def speech_shaped(n: int, spectrum: np.ndarray, rng) -> np.ndarray:
    """White noise with the magnitude spectrum ``spectrum`` (rfft bins of a length-n signal)."""
    spec = np.fft.rfft(rng.standard_normal(n)) * spectrum
    return np.fft.irfft(spec, n)


def babble_noise(n: int, ltass: np.ndarray, rng, sources: int = 6) -> np.ndarray:
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    shape = np.interp(freqs, np.linspace(0, RATE / 2, ltass.size), ltass)
    total = np.zeros(n)
    t = np.arange(n) / RATE
    for _ in range(sources):
        x = speech_shaped(n, shape, rng)
        rate = rng.uniform(3.0, 6.0)            # syllables per second
        env = np.maximum(0, np.sin(2 * np.pi * rate * t + rng.uniform(0, 6.3))
                         + 0.4 * rng.standard_normal(1))
        env *= lfilter([0.01], [1, -0.99], rng.uniform(0.3, 1.0, n))     # slow level drift
        gate = np.zeros(n)
        pos = 0
        while pos < n:                          # phrases on/off, 1-3 s
            length = int(rng.uniform(1.0, 3.0) * RATE)
            gate[pos:pos + length] = rng.random() < 0.7
            pos += length
        total += x / np.std(x) * env * gate
    return (total / np.std(total)).astype(np.float32)


def long_term_spectrum(clips: list, bins: int = 257) -> np.ndarray:
    acc = np.zeros(bins)
    for c in clips:
        n = c.size // 512
        frames = c[:n * 512].reshape(n, 512) * np.hanning(512)
        acc += np.mean(np.abs(np.fft.rfft(frames, axis=1)) ** 2, axis=0)
    return np.sqrt(acc / len(clips))


def tilt_spectrum(bins: int = 257) -> np.ndarray:
    f = np.linspace(0, RATE / 2, bins)
    return np.where(f < 100, f / 100, 1.0) / np.maximum(1.0, f / 500.0)


def run_vad(vad, x: np.ndarray, chunk: int) -> tuple[np.ndarray, float]:
    t0 = time.process_time()
    flags = np.concatenate([vad.process(x[i:i + chunk]) for i in range(0, x.size, chunk)])
    return flags, time.process_time() - t0


def f1(pred: np.ndarray, truth: np.ndarray) -> float:
    n = min(pred.size, truth.size)
    p, t = pred[:n], truth[:n]
    tp = np.sum(p & t)
    return 2 * tp / max(1, 2 * tp + np.sum(p & ~t) + np.sum(~p & t))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seconds', type=float, default=60.0, help='length of the speech track')
    ap.add_argument('--speech', choices=('auto', 'ravdess', 'espeak'), default='auto')
    ap.add_argument('--seed', type=int, default=0,
                    help='track, level spread and noise seed (tune on one, report another)')
    ap.add_argument('--silero-thresholds', default=None,
                    help="comma-separated vad_threshold values to compare (default: vocal_node's "
                         'default)')
    ap.add_argument('--silero-hangovers', default=None,
                    help='comma-separated vad_silero_hangover_seconds values to compare '
                         "(default: vocal_node's default)")
    ap.add_argument('--silero-prerolls', default=None,
                    help='comma-separated vad_silero_preroll_seconds values to compare '
                         "(default: vocal_node's default)")
    a = ap.parse_args(argv)
    try:
        thresholds = [float(v) for v in a.silero_thresholds.split(',')] \
            if a.silero_thresholds else [DEFAULTS['vad_threshold']]
        hangovers = [float(v) for v in a.silero_hangovers.split(',')] \
            if a.silero_hangovers else [DEFAULTS['vad_silero_hangover_seconds']]
        prerolls = [float(v) for v in a.silero_prerolls.split(',')] \
            if a.silero_prerolls else [DEFAULTS['vad_silero_preroll_seconds']]
    except ValueError as exc:
        ap.error(f'--silero-thresholds/--silero-hangovers/--silero-prerolls: {exc}')
    rng = np.random.default_rng(a.seed)
    use_data = (data_root() / 'ravdess').is_dir() if a.speech == 'auto' else a.speech == 'ravdess'
    if use_data:
        clips = ravdess_clips(1, 16, 2, rng)
        ltass = long_term_spectrum(ravdess_clips(17, 4, 3, rng))
        source = f'RAVDESS actors 1-16 ({data_root()}), babble spectrum from actors 17-20'
    elif shutil.which('espeak-ng'):
        clips, ltass = espeak_clips(), tilt_spectrum()
        source = 'espeak-ng (no RAVDESS found), babble spectrum: speech-like tilt'
    else:
        print('no speech source: neither RAVDESS data nor espeak-ng', file=sys.stderr)
        return 1
    rng.shuffle(clips)
    speech, truth = build_track(clips, a.seconds, rng)
    n = speech.size
    print(f'speech: {source}; track {n / RATE:.1f} s, {100 * truth.mean():.0f} % speech frames')
    sig_power = np.mean(speech[:truth.size * FRAME].reshape(-1, FRAME)[truth] ** 2)
    noises = {'fan': fan_noise(n, rng), 'babble': babble_noise(n, ltass, rng)}
    model = SileroModel.load(threads=1)
    grid = len(thresholds) * len(hangovers) * len(prerolls) > 1
    detectors = {}
    for thr in thresholds:
        for hang in hangovers:
            for pre in prerolls:
                name = f'silero t={thr:g} h={hang:g} p={pre:g}' if grid else 'silero'
                detectors[name] = lambda rate=RATE, thr=thr, hang=hang, pre=pre: SileroVad(
                    rate, model, thr, DEFAULTS['vad_frame_seconds'], hang, pre)
    detectors.update({
        'energy': lambda rate=RATE: EnergyVad(
            rate, DEFAULTS['vad_frame_seconds'], DEFAULTS['vad_margin_db'],
            DEFAULTS['vad_min_level_db'], DEFAULTS['vad_hangover_seconds'],
            DEFAULTS['vad_noise_window_seconds'], DEFAULTS['vad_noise_percentile'])})
    table, cpu = [], {k: [0.0, 0.0] for k in detectors}
    clean_f1 = {k: f1(run_vad(make(), speech, RATE // 10)[0], truth)
                for k, make in detectors.items()}
    for noise_name, noise in noises.items():
        for snr in SNRS:
            x = speech + noise * np.sqrt(sig_power / 10 ** (snr / 10))
            for det, make in detectors.items():
                flags, sec = run_vad(make(), x, RATE // 10)
                cpu[det][0] += sec
                cpu[det][1] += n / RATE
                target = '>= 0.90' if snr == 10 and det.startswith('silero') else '-'
                table.append((f'{det} frame F1, {noise_name} {snr} dB SNR',
                              f'{f1(flags, truth):.3f}', target))
    for det, value in clean_f1.items():
        table.append((f'{det} frame F1, clean', f'{value:.3f}', '-'))
    for det, (sec, audio) in cpu.items():
        table.append((f'{det} CPU, 16 kHz', f'{100 * sec / audio:.2f} % of one core',
                      '<= 2 %' if det.startswith('silero') else '-'))
    x48 = resample(speech + noises['fan'] * np.sqrt(sig_power / 10), RATE, 48000)
    _, sec = run_vad(next(iter(detectors.values()))(48000), x48, 4800)
    table.append(('silero CPU, 48 kHz (resampled in the VAD)',
                  f'{100 * sec / (x48.size / 48000):.2f} % of one core', '<= 2 %'))
    w = max(len(r[0]) for r in table)
    print(f'\n{"stage":<{w}}  {"measured":<22}  {"target":<10}')
    print('-' * (w + 34))
    for stage, fig, target in table:
        print(f'{stage:<{w}}  {fig:<22}  {target:<10}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
