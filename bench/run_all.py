"""Run every benchmark of the project and print one table: stage, figure, target, measured.

Each bench/bench_*.py prints its own table (a header line naming `stage` ... `measured`); this
runner runs them one after the other (they need the machine to themselves for honest figures),
collects those rows and prints them together, with a source column. Figures are printed, never
asserted. `make bench` runs it in a loopback-only network namespace (the live-graph bench starts
DDS participants).
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from emotion_runtime.cpu import cpu_summary

HERE = Path(__file__).resolve().parent
ORDER = ['bench_models.py', 'bench_perception.py', 'bench_detection.py', 'bench_vad.py',
         'bench_fusion.py', 'bench_tracker.py', 'bench_system.py', 'bench_coldstart.py', 'bench_soak.py']
# Arguments for a bench inside `make bench`: the soak runs 3 minutes here (10 on its own).
ARGS = {'bench_soak.py': ['--minutes', '3']}


def _cells(row: str) -> list:
    return ([c.strip() for c in row.strip().strip('|').split('|')] if '|' in row
            else re.split(r'\s{2,}', row.strip()))


def parse_table(text: str) -> list:
    """Rows (stage, figure, target, measured) of the first stage/measured table in `text`.

    The benches print their tables in their own column orders (stage | measured | target, or
    stage figure target measured): the header line names the columns, so map by name; cells past
    the named ones (e.g. an "ok" verdict) are appended to the measured value.
    """
    lines = text.splitlines()
    for i, line in enumerate(lines):
        low = line.lower()
        if not ('stage' in low and 'measured' in low):
            continue
        names = [c.lower() for c in _cells(line)]
        index = {key: next((k for k, n in enumerate(names) if key in n), None)
                 for key in ('stage', 'figure', 'target', 'measured')}
        rows: list = []
        for row in lines[i + 1:]:
            if not row.strip():
                if rows:
                    break
                continue
            if set(row.strip()) <= set('-|: '):
                continue
            cells = _cells(row)
            if len(cells) < 2:
                continue
            get = lambda key, cells=cells, index=index: (  # noqa: E731
                cells[index[key]] if index[key] is not None
                and index[key] < len(cells) else '-')
            extra = ' '.join(cells[len(names):])
            rows.append((get('stage'), get('figure'), get('target'),
                         (get('measured') + (' ' + extra if extra else '')).strip()))
        if rows:
            return rows
    return []


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--only', nargs='*', default=None, help='run only these bench files')
    ap.add_argument('--timeout', type=float, default=900, help='per benchmark, seconds')
    a = ap.parse_args(argv)
    table = []
    for name in a.only or ORDER:
        path = HERE / name
        if not path.exists():
            continue
        print(f'[bench] {name} ...', file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            result = subprocess.run([sys.executable, str(path)] + ARGS.get(name, []),
                                    capture_output=True, text=True,
                                    timeout=a.timeout)
            out, code = result.stdout + result.stderr, result.returncode
        except subprocess.TimeoutExpired:
            out, code = '', 'timeout'
        rows = parse_table(out)
        print(f'[bench] {name}: exit {code}, {time.monotonic() - t0:.0f} s, {len(rows)} rows',
              file=sys.stderr, flush=True)
        if not rows:
            rows = [('(no table)', f'exit {code}', '-', out.strip().splitlines()[-1][:60]
                     if out.strip() else '-')]
        table += [(name.removeprefix('bench_').removesuffix('.py'),) + r for r in rows]
    widths = [max(len(str(r[i])) for r in table + [('source', 'stage', 'figure', 'target',
                                                    'measured')]) for i in range(5)]
    header = ('source', 'stage', 'figure', 'target', 'measured')
    print(f'CPU: {cpu_summary()}')
    print('  '.join(h.ljust(w) for h, w in zip(header, widths)))
    print('  '.join('-' * w for w in widths))
    for r in table:
        print('  '.join(str(c).ljust(w) for c, w in zip(r, widths)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
