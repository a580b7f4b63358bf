"""Print one closing line for the whole test run from every JUnit XML file below a directory.

Why: the suite runs three runners (colcon's pytest per package, the training tests, the firmware
tests); CI and people want one figure. Exit code 1 when anything failed or nothing ran.
"""
from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def count(path: Path) -> tuple[int, int, int]:
    """(passed, failed, skipped) of one JUnit file; errors count as failures."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == 'testsuite' else root.findall('testsuite')
    passed = failed = skipped = 0
    for suite in suites:
        for case in suite.iter('testcase'):
            if case.find('failure') is not None or case.find('error') is not None:
                failed += 1
            elif case.find('skipped') is not None:
                skipped += 1
            else:
                passed += 1
    return passed, failed, skipped


def main(argv: list[str]) -> int:
    base = Path(argv[1] if len(argv) > 1 else 'build')
    totals = [0, 0, 0]
    for path in sorted(base.rglob('*.xml')):
        if 'test_results' not in str(path) and not path.name.startswith('pytest'):
            continue
        try:
            counts = count(path)
        except ET.ParseError:
            continue
        totals = [a + b for a, b in zip(totals, counts)]
    passed, failed, skipped = totals
    print(f'{passed} passed, {failed} failed, {skipped} skipped')
    return 1 if failed or passed == 0 else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
