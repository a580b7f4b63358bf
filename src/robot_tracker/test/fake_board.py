"""A protocol-level fake board on a pty, for transport tests and the benchmark (no simulator)."""
from __future__ import annotations

import os
import select
import threading
import tty
from pathlib import Path
from typing import List

from robot_tracker import protocol as proto


class FakeBoard:
    """Answers like the firmware (ACK, STATUS); exposes its slave path via a stable symlink."""

    def __init__(self, link: Path, garbage: bytes = b'', silent: bool = False) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.link = link
        tmp = link.with_name(link.name + '.tmp')
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(os.ttyname(self.slave))
        os.replace(tmp, link)
        self.garbage = garbage
        self.silent = silent
        self.targets: List[bytes] = []
        self.received: List[proto.Frame] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        dec = proto.FrameDecoder()
        while not self._stop:
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self.master, 256)
            except OSError:
                return
            for fr in dec.feed(data):
                if not isinstance(fr, proto.Frame):
                    continue
                self.received.append(fr)
                if self.silent:
                    continue
                if fr.type == proto.MsgType.SET_TARGET:
                    self.targets.append(fr.payload)
                if fr.type == proto.MsgType.GET_STATUS:
                    reply = proto.encode(proto.MsgType.STATUS, fr.seq, bytes(20))
                else:
                    reply = proto.encode(proto.MsgType.ACK, fr.seq, bytes([fr.type]))
                try:
                    os.write(self.master, self.garbage + reply)
                except OSError:
                    return

    def unplug(self) -> None:
        """Like pulling the USB cable: the device node disappears, open handles fail."""
        self._stop = True
        self._thread.join(1.0)
        try:
            self.link.unlink()
        except FileNotFoundError:
            pass
        os.close(self.master)
        os.close(self.slave)
