"""The native (host-compiled) firmware tests, run as pytest cases so they show up in the summary:
unit tests of the C core under ASan+UBSan (release and debug builds), the fuzz run of the parser,
and the check that the committed C<->Python vectors are what the C code produces."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

FW = Path(__file__).resolve().parents[1]
BUILD = FW / 'build'
FUZZ_RUNS = int(os.environ.get('FUZZ_RUNS', '1000000'))


def _binary(name: str) -> Path:
    path = BUILD / name
    if not path.exists():
        res = subprocess.run(['make', '-C', str(FW), f'build/{name}'], capture_output=True, text=True)
        assert path.exists(), f'could not build {name}:\n{res.stdout}{res.stderr}'
    return path


def _run(cmd, timeout=600):
    env = dict(os.environ, ASAN_OPTIONS='detect_leaks=1:abort_on_error=0',
               UBSAN_OPTIONS='print_stacktrace=1:halt_on_error=1')
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.parametrize('variant', ['release', 'debug'])
def test_core_unit_tests_under_sanitizers(variant):
    res = _run([_binary(f'test_core_{variant}')])
    print(res.stdout)
    assert res.returncode == 0, res.stdout + res.stderr
    assert ', 0 failures' in res.stdout


def test_parser_fuzz_run_has_no_finding():
    res = _run([_binary('fuzz_parser'), FUZZ_RUNS])
    print(res.stdout)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f'{FUZZ_RUNS} inputs' in res.stdout and 'no finding' in res.stdout


def test_committed_vectors_match_c_implementation():
    res = _run([_binary('gen_vectors')])
    assert res.returncode == 0, res.stderr
    assert res.stdout == (FW / 'tests' / 'vectors.json').read_text(), \
        'firmware/tests/vectors.json is stale: run `make -C firmware vectors` and commit it'
