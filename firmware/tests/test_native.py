"""The native (host-compiled) firmware tests, run as pytest cases so they show up in the summary:
unit tests of the C core under ASan+UBSan (release and debug builds), the random fuzz run of the
parser, a time-bounded coverage-guided libFuzzer run (clang; seeded from vectors.json; skipped
with a message where clang is missing), failsafe timing under fuzzed input, and the check that the
committed C<->Python vectors are what the C code produces."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

FW = Path(__file__).resolve().parents[1]
BUILD = FW / 'build'
FUZZ_RUNS = int(os.environ.get('FUZZ_RUNS', '1000000'))
LIBFUZZ_SECONDS = int(os.environ.get('LIBFUZZ_SECONDS', '20'))
FAILSAFE_TRIALS = int(os.environ.get('FAILSAFE_TRIALS', '3000'))


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


def _seed_corpus(corpus: Path) -> int:
    """One seed per committed vector frame (and all of them back to back), each behind the harness's
    first byte (the clock step per byte): 1 ms, 5 ms and 63 ms (past the 50 ms inter-byte
    timeout), so the fuzzer starts from frames the parser accepts."""
    corpus.mkdir(parents=True, exist_ok=True)
    frames = [bytes.fromhex(v['frame']) for v in
              json.loads((FW / 'tests' / 'vectors.json').read_text())]
    seeds = frames + [b''.join(frames)]
    n = 0
    for step in (1, 5, 63):
        for i, frame in enumerate(seeds):
            (corpus / f'seed_{step}_{i}').write_bytes(bytes([step]) + frame)
            n += 1
    return n


def test_libfuzzer_run_has_no_finding():
    clang = os.environ.get('CLANG', 'clang')
    if shutil.which(clang) is None:
        pytest.skip(f'{clang} is not installed (apt: clang libclang-rt-dev): no libFuzzer run; '
                    'the random fuzzer above still ran')
    binary = _binary('fuzz_libfuzzer')
    corpus = BUILD / 'libfuzzer_corpus'            # kept between runs (build/ is git-ignored)
    seeds = _seed_corpus(corpus)
    res = _run([binary, f'-max_total_time={LIBFUZZ_SECONDS}', '-print_final_stats=1',
                f'-artifact_prefix={BUILD}/libfuzzer-', '-timeout=5', corpus],
               timeout=LIBFUZZ_SECONDS + 120)
    tail = res.stderr[-4000:]
    print(tail)
    assert res.returncode == 0, f'libFuzzer found a crash (artifact in {BUILD}):\n{tail}'
    assert 'Done' in res.stderr and 'stat::number_of_executed_units' in res.stderr, tail
    assert len(list(corpus.iterdir())) >= seeds


def test_failsafe_fires_on_time_under_fuzzed_input():
    res = _run([_binary('failsafe_fuzz'), FAILSAFE_TRIALS])
    print(res.stdout)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f'{FAILSAFE_TRIALS} trials' in res.stdout and 'no finding' in res.stdout
