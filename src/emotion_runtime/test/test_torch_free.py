"""The robot side stays torch-free: no node and no runtime module imports torch or the training
package, and no source file under src/ imports ``emotion_training`` (training may import src
packages, never the other way round)."""
from __future__ import annotations

import ast
import json
import os
import pathlib
import subprocess
import sys

import pytest

NODE_MODULES = ['emotion_perception.camera_node', 'emotion_perception.microphone_node',
                'emotion_perception.face_node', 'emotion_perception.vocal_node',
                'emotion_fusion.fusion_node', 'robot_tracker.tracker_node']
FORBIDDEN = ('torch', 'emotion_training')


def _src_root() -> pathlib.Path:
    """The workspace's src/ folder (this file is src/emotion_runtime/test/test_torch_free.py)."""
    for base in [pathlib.Path(__file__).resolve().parents[2],
                 pathlib.Path(os.environ.get('EMOTION_ROBOT_ROOT', '/nonexistent')) / 'src']:
        if (base / 'emotion_runtime').is_dir() and (base / 'emotion_msgs').is_dir():
            return base
    pytest.fail('cannot find the workspace src/ folder (set EMOTION_ROBOT_ROOT)')


# Runs in a fresh interpreter: imports every node module and every emotion_runtime module, then
# reports which of them loaded and which forbidden modules are in sys.modules.
_PROBE = r'''
import importlib, json, pkgutil, sys
forbidden, nodes = sys.argv[1].split(','), sys.argv[2].split(',')
import emotion_runtime
runtime = sorted(m.name for m in pkgutil.walk_packages(emotion_runtime.__path__,
                                                       'emotion_runtime.'))
imported = []
for name in ['emotion_runtime'] + runtime + nodes:
    importlib.import_module(name)
    imported.append(name)
loaded = sorted({m.split('.')[0] for m in sys.modules} & set(forbidden))
print(json.dumps({'imported': imported, 'runtime': runtime, 'forbidden_loaded': loaded}))
'''


def test_importing_every_node_and_runtime_module_loads_no_torch():
    run = subprocess.run([sys.executable, '-c', _PROBE, ','.join(FORBIDDEN), ','.join(NODE_MODULES)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(NODE_MODULES) <= set(result['imported'])
    # every module of the runtime package was found and imported (not just the package)
    assert {'emotion_runtime.model_bundle', 'emotion_runtime.preprocess',
            'emotion_runtime.speaker_calibration'} <= set(result['runtime'])
    assert set(result['runtime']) <= set(result['imported'])
    assert result['forbidden_loaded'] == [], (
        f'importing the nodes loaded {result["forbidden_loaded"]}')


def _imports_of(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import statement, and of importlib.import_module / __import__ /
    pytest.importorskip calls with a literal module name."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', '')
            arg = node.args[0]
            if (name in ('import_module', '__import__', 'importorskip')
                    and isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                found.append((node.lineno, arg.value))
    return found


def test_no_source_file_under_src_imports_the_training_package():
    src = _src_root()
    files = [p for p in src.rglob('*.py') if '__pycache__' not in p.parts]
    assert len(files) > 20, f'only {len(files)} Python files under {src}'
    offenders = []
    for path in files:
        tree = ast.parse(path.read_text(encoding='utf-8'), filename=str(path))
        for line, module in _imports_of(tree):
            if module.split('.')[0] == 'emotion_training':
                offenders.append(f'{path.relative_to(src)}:{line}: {module}')
    assert offenders == [], 'src/ must not import the training package:\n' + '\n'.join(offenders)


def test_the_static_check_sees_every_import_form():
    code = ('import emotion_training\nfrom emotion_training.testing import x\n'
            'import importlib\nimportlib.import_module("emotion_training.bag_types")\n'
            'pytest.importorskip("emotion_training.testing")\nfrom . import emotion_training\n')
    modules = [m for _, m in _imports_of(ast.parse(code))]
    assert modules.count('emotion_training') == 1
    assert {'emotion_training.testing', 'emotion_training.bag_types'} <= set(modules)
