"""The table every bench prints: stage, figure, target, measured (what bench/run_all.py reads)."""
from __future__ import annotations

from collections.abc import Sequence

HEADER = ('stage', 'figure', 'target', 'measured')


def print_table(rows: Sequence[Sequence[str]]) -> None:
    """Print `rows` of (stage, figure, target, measured) under a header, columns aligned."""
    rows = [tuple(' '.join(str(c).split()) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    print('  '.join(h.ljust(w) for h, w in zip(HEADER, widths)).rstrip())
    print('  '.join('-' * w for w in widths))
    for r in rows:
        print('  '.join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
