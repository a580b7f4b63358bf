"""`parallel.map_ordered`: per-seed work in spawned processes (--jobs), in the items' order."""
from __future__ import annotations

import math

import pytest

from emotion_training.parallel import check_jobs, map_ordered


@pytest.mark.parametrize('jobs', [1, 2, 5])
def test_results_come_in_the_items_order(jobs):
    items = [49.0, 4.0, 81.0, 1.0, 16.0]
    assert list(map_ordered(math.sqrt, items, jobs)) == [7.0, 2.0, 9.0, 1.0, 4.0]
    assert list(map_ordered(math.sqrt, [], jobs)) == []


def test_a_workers_exception_keeps_its_type_and_the_results_before_it():
    got = []
    with pytest.raises(ValueError, match="invalid literal for int"):
        for value in map_ordered(int, ['3', '4', 'x', '5'], jobs=2):
            got.append(value)
    assert got == [3, 4]


@pytest.mark.parametrize('bad', [0, -1, 1.5, True, '2'])
def test_jobs_must_be_a_whole_number_of_processes(bad):
    with pytest.raises(ValueError, match='--jobs'):
        check_jobs(bad)
    with pytest.raises(ValueError, match='--jobs'):
        list(map_ordered(math.sqrt, [1.0], bad))
    assert check_jobs(3) == 3
