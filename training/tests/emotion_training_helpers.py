"""Constants shared by the training tests (a uniquely named module: several test folders of the
workspace have their own conftest.py, so tests must not import from 'conftest')."""
LABELS3 = ['happy', 'neutral', 'sad']
TINY_VISION = ['--vision-layers', '1,1,1,1', '--vision-widths', '8,16,16,32',
               '--vision-embedding', '32']
TINY_VOCAL = ['--vocal-widths', '8,8,16,16', '--vocal-embedding', '32']
