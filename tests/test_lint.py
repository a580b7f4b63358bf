"""Lint as tests: ruff over every Python file (config: ruff.toml) and a check of every package.xml.

`make test` fails on any finding. The package.xml check parses each manifest with catkin_pkg (the
parser colcon and rosdep use), runs its validation (format 3, names, versions, licences,
maintainers, dependency names) and checks what the build relies on: the schema reference, the
build type each package is built with, and that an ament_python package's setup.py and resource
marker use the manifest's name.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = sorted(p for p in ROOT.glob('**/package.xml')
                   if not {'.venv', 'build', 'install', 'log'} & set(p.relative_to(ROOT).parts))


def _ruff() -> list[str]:
    exe = shutil.which('ruff') or str(Path(sys.executable).with_name('ruff'))
    if not Path(exe).exists():
        pytest.fail('ruff is not installed: run `make setup` (requirements/python.txt pins it)')
    return [exe]


def test_ruff_finds_nothing() -> None:
    run = subprocess.run(_ruff() + ['check', '--no-cache', '--output-format', 'concise', str(ROOT)],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, f'ruff findings:\n{run.stdout}{run.stderr}'


def test_ruff_would_fail_on_a_finding(tmp_path: Path) -> None:
    """The lint step can fail: the same config flags an unused import and a late import."""
    bad = tmp_path / 'bad.py'
    bad.write_text('import os\n\n\ndef f():\n    import json\n    return json\n')
    run = subprocess.run(_ruff() + ['check', '--no-cache', '--config', str(ROOT / 'ruff.toml'),
                                    '--output-format', 'concise', str(bad)],
                         capture_output=True, text=True)
    assert run.returncode == 1
    assert 'F401' in run.stdout and 'PLC0415' in run.stdout


def test_every_workspace_package_has_a_manifest() -> None:
    names = {p.parent.name for p in MANIFESTS}
    assert {'emotion_msgs', 'emotion_runtime', 'emotion_perception', 'emotion_fusion',
            'robot_tracker', 'emotion_test_tools', 'launch'} <= names


@pytest.mark.parametrize('manifest', MANIFESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_package_xml_is_valid_format_3(manifest: Path) -> None:
    from catkin_pkg.package import InvalidPackage, parse_package
    warnings: list[str] = []
    try:
        pkg = parse_package(str(manifest), warnings=warnings)
        pkg.validate(warnings=warnings)
    except InvalidPackage as exc:
        pytest.fail(f'{manifest}: {exc}')
    assert not warnings, f'{manifest}: {warnings}'
    text = manifest.read_text()
    assert pkg.package_format == 3, f'{manifest}: format {pkg.package_format}, expected 3'
    assert 'http://download.ros.org/schema/package_format3.xsd' in text, \
        f'{manifest}: no xml-model schema reference'
    build_types = [e.content for e in pkg.exports if e.tagname == 'build_type']
    assert len(build_types) == 1, f'{manifest}: expected one <build_type> export, got {build_types}'
    folder = manifest.parent
    if build_types[0] == 'ament_python':
        setup = (folder / 'setup.py').read_text()
        assert re.search(rf"package_name = '{re.escape(pkg.name)}'", setup), \
            f'{folder}/setup.py does not use the manifest name {pkg.name!r}'
        assert (folder / 'resource' / pkg.name).is_file(), \
            f'{folder}: missing resource/{pkg.name} (ament index marker)'
    else:
        assert build_types[0] == 'ament_cmake', f'{manifest}: unknown build type {build_types[0]}'
        cmake = (folder / 'CMakeLists.txt').read_text()
        assert f'project({pkg.name})' in cmake, f'{folder}/CMakeLists.txt: project() != {pkg.name}'
