"""What CPU a figure was measured on, in one line.

Speed figures depend on the CPU, and so do the answers of an int8 graph with full 8-bit weights:
on x86 CPUs without VNNI onnxruntime's uint8 x int8 kernels add pairs of products into
saturating 16-bit sums, which such weights overflow (bundles from 0.8.1 keep them to 7 bits).
Reports (``emotion-eval stream``, ``bench/run_all.py``) print this line so a figure says where it
came from.  Reads ``/proc/cpuinfo`` where there is one; no rclpy, no torch.
"""
from __future__ import annotations

import os
import pathlib
import platform

__all__ = ['INT8_SAFE_WEIGHT_BOUND', 'cpu_summary', 'describe_cpu']

#: the largest |int8 weight| no x86 uint8 x int8 kernel can overflow with (2 x 255 x 64 < 2**15)
INT8_SAFE_WEIGHT_BOUND = 64

_VNNI = ('avx512_vnni', 'avx_vnni', 'amx_int8')


def describe_cpu(cpuinfo: str, machine: str, cores: int | None) -> str:
    """``model, N cores, instruction note`` from the text of ``/proc/cpuinfo`` (may be empty)
    and ``platform.machine()``."""
    model, flags = '', set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(':')
        key = key.strip().lower()
        if key in ('model name', 'hardware', 'cpu model') and not model:
            model = value.strip()
        elif key in ('flags', 'features') and not flags:
            flags = set(value.split())
    parts = [model or machine or 'unknown CPU']
    if cores:
        parts.append(f'{cores} cores')
    if machine.lower() in ('x86_64', 'amd64', 'i686', 'i386'):
        vnni = sorted(f for f in flags if f in _VNNI)
        if vnni:
            parts.append(f'x86 with VNNI ({", ".join(vnni)})')
        elif flags:
            widest = 'AVX-512' if 'avx512f' in flags else 'AVX2' if 'avx2' in flags else 'SSE'
            parts.append(f'x86 {widest} without VNNI (int8 graphs need 7-bit weights here)')
        else:
            parts.append('x86, instruction set unknown')
    elif machine:
        parts.append(machine)
    return ', '.join(parts)


def cpu_summary() -> str:
    """:func:`describe_cpu` of the machine this runs on."""
    path = pathlib.Path('/proc/cpuinfo')
    try:
        text = path.read_text(errors='replace') if path.is_file() else ''
    except OSError:
        text = ''
    return describe_cpu(text, platform.machine(), os.cpu_count())
