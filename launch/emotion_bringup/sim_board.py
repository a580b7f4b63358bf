"""The simulated Arduino Uno: simavr running the real pan/tilt firmware behind a pseudo-terminal.

Why: the demo, the full-system test and `serial_port:=sim` in robot.launch.py drive the same
firmware .elf that a real Uno would run, through firmware/build/simharness (a libsimavr harness that
bridges UART0 to a pty and reports the servo pulse widths). The pty is linked at SIM_PORT, so the
tracker node can be started before or after the simulator and finds it under a fixed name.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .graph import repo_root

SIM_PORT = os.environ.get('EMOTION_SIM_PORT', '/tmp/emotion_sim_board')


def firmware_build_dir() -> Path:
    return repo_root() / 'firmware' / 'build'


def ensure_built() -> None:
    """Build the firmware and the harness (make is incremental) or raise with make's output."""
    result = subprocess.run(['make', '-C', str(repo_root() / 'firmware'), 'all', 'sim'],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError('building the firmware / simavr harness failed:\n'
                           + result.stdout[-2000:] + result.stderr[-2000:])


def sim_board_command(port: str = SIM_PORT) -> list:
    """The command line that runs the simulated board with its pty linked at `port`."""
    build = firmware_build_dir()
    return [str(build / 'simharness'), '--link', port, str(build / 'pantilt.elf')]
