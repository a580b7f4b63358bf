"""scripts/env.sh, which every script and shell of the project sources, works under the strict
shell options scripts use (``set -euo pipefail``) and leaves them as they were."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize('options', ['-euo pipefail', '-eo pipefail'])
def test_env_sh_sources_under_strict_options_and_keeps_them(options):
    if not (ROOT / '.venv/bin/activate').exists():
        pytest.skip('no .venv: run `make setup` first')
    script = (f'set {options}\nsource scripts/env.sh\necho "flags=$-"\n'
              'python -c "import emotion_runtime, sys; print(sys.prefix)"\n')
    env = {'PATH': '/usr/local/bin:/usr/bin:/bin', 'HOME': os.environ.get('HOME', '/tmp')}
    r = subprocess.run(['bash', '-c', script], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    flags = r.stdout.split('flags=')[1].split()[0]
    assert ('u' in flags) == ('u' in options)        # the caller's `set -u` is restored
    assert r.stdout.strip().splitlines()[-1] == str(ROOT / '.venv')
