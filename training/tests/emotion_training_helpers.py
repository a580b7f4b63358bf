"""Constants shared by the training tests (a uniquely named module: several test folders of the
workspace have their own conftest.py, so tests must not import from 'conftest')."""
import pathlib

import numpy as np

LABELS3 = ['happy', 'neutral', 'sad']
TINY_VISION = ['--vision-layers', '1,1,1,1', '--vision-widths', '8,16,16,32',
               '--vision-embedding', '32']
TINY_VOCAL = ['--vocal-widths', '8,8,16,16', '--vocal-embedding', '32']
#: a six-label set (no surprise, as bundle 0.6.0: RAVDESS surprised must be left out)
LABELS6 = ('angry', 'disgust', 'fear', 'happy', 'neutral', 'sad')
RATE = 16000

#: RAVDESS emotion codes of the six labels, plus calm (02) and surprised (08)
CODES = {'neutral': '01', 'happy': '03', 'sad': '04', 'angry': '05', 'fear': '06',
         'disgust': '07'}


def write_ravdess(root: pathlib.Path, actors=('01', '02'), per_label: int = 3,
                  seed: int = 0) -> pathlib.Path:
    """RAVDESS-named speech (Actor_AA/03-01-EE-II-SS-RR-AA.wav): a quiet lead, a tone of the
    label of 0.6-1.6 s, a quiet tail, as the real clips keep their silences."""
    import soundfile as sf  # noqa: PLC0415 - speech extra

    from emotion_training.synthetic import tone  # noqa: PLC0415
    rng = np.random.default_rng(seed)
    for actor in actors:
        d = root / f'Actor_{actor}'
        d.mkdir(parents=True, exist_ok=True)
        for lab, code in [*CODES.items(), ('neutral', '02'), ('happy', '08')]:  # calm, surprised
            for i in range(per_label):
                x = tone(lab, rng, float(rng.uniform(0.6, 1.6)), RATE)
                x = np.pad(x, (int(0.4 * RATE), int(0.5 * RATE)))
                name = f'03-01-{code}-01-{i % 2 + 1:02d}-{i // 2 + 1:02d}-{actor}.wav'
                sf.write(str(d / name), x, RATE)
    return root
