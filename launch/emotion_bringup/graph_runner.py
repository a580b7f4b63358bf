"""Start robot_graph() as separate node processes without ROS `launch`.

Why: the demo and the full-system test run on machines that get ROS 2 from PyPI wheels, where
`ros2 launch` does not exist. This runner starts the same NodeSpecs that robot.launch.py starts,
each as its own process with its log kept, and can stop, kill and restart one node (the
full-system test kills the vocal node to check that the rest of the graph keeps running).
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

from .graph import NodeSpec, executable_path


class NodeRun:
    """One running node process of the graph."""

    def __init__(self, spec: NodeSpec, namespace: str, log_level: str, env: Optional[dict],
                 log_dir: Path) -> None:
        self.spec = spec
        self.namespace, self.log_level, self.env = namespace, log_level, env
        self.log_path = log_dir / f'{spec.name}.log'
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0

    def command(self) -> list:
        return [executable_path(self.spec)] + self.spec.ros_args(self.namespace, self.log_level)

    def start(self) -> None:
        log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(self.command(), env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.starts += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """Ctrl-C (SIGINT), as `ros2 launch` does, then SIGKILL if the node hangs."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def output(self) -> str:
        return self.log_path.read_text(errors='replace') if self.log_path.exists() else ''


class GraphRunner:
    """All nodes of a graph as processes; a context manager that stops them all on exit."""

    def __init__(self, specs: list, namespace: str = '', log_level: str = 'info',
                 env: Optional[dict] = None, log_dir: Optional[Path] = None) -> None:
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix='emotion_graph_'))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.nodes = {s.name: NodeRun(s, namespace, log_level, env, self.log_dir) for s in specs}

    def start(self) -> 'GraphRunner':
        for node in self.nodes.values():
            node.start()
        return self

    def respawn_dead(self) -> list:
        """Restart nodes marked respawn that have exited (what launch's respawn=True does)."""
        restarted = []
        for node in self.nodes.values():
            if node.spec.respawn and node.proc is not None and not node.alive():
                node.start()
                restarted.append(node.spec.name)
        return restarted

    def dead(self) -> list:
        return [n.spec.name for n in self.nodes.values() if not n.alive()]

    def stop(self) -> dict:
        """Stop every node (in reverse start order); returns name -> exit code."""
        codes = {}
        for node in reversed(list(self.nodes.values())):
            codes[node.spec.name] = node.stop()
        return codes

    def logs(self, tail: int = 3000) -> str:
        return '\n'.join(f'--- {name} ---\n{node.output()[-tail:]}'
                         for name, node in self.nodes.items())

    def __enter__(self) -> 'GraphRunner':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    """Poll until `predicate()` holds or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
