"""A CSV manifest for any other data: header ``path,label,speaker`` plus optional ``audio,video``.

Relative paths are resolved against the CSV's folder.  Labels go through the alias table; rows
whose label is outside the label set are skipped; a row with an unknown label or a missing
required column is an error naming the line.
"""
from __future__ import annotations

import csv
import pathlib
from typing import Sequence

from ..labels import canonical
from .common import Sample


def load_csv_manifest(csv_path: str | pathlib.Path, labels: Sequence[str]) -> list[Sample]:
    """Read the manifest; see the module docstring for the columns."""
    csv_path = pathlib.Path(csv_path)
    base = csv_path.parent

    def resolve(v: str) -> pathlib.Path | None:
        if not v:
            return None
        p = pathlib.Path(v)
        return p if p.is_absolute() else base / p

    out = []
    with open(csv_path, newline='', encoding='utf-8') as f:
        reader = csv.DictReader(f)
        missing = {'path', 'label'} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f'{csv_path}: missing column(s) {sorted(missing)}')
        for i, row in enumerate(reader, start=2):
            name = (row.get('label') or '').strip()
            if canonical(name) is None:
                raise ValueError(f'{csv_path}:{i}: unknown label {name!r}')
            label = canonical(name, labels)
            if label is None:
                continue
            out.append(Sample(path=resolve(row['path'].strip()), label=label,
                              speaker=(row.get('speaker') or '').strip(),
                              audio=resolve((row.get('audio') or '').strip()),
                              video=resolve((row.get('video') or '').strip())))
    return out
