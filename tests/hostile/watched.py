"""A ``scim-desktop`` command run in a subprocess for the hostile scripts, and what it costs,
read from /proc (Linux only): hostile_clients.py's ``serve`` and proxy_hostile.py's ``proxy``
are both :class:`Watched`."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

BASE_URL_RE = re.compile(r"Base URL:\s+http://127\.0\.0\.1:(\d+)(/\S*)")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Watched:
    """``python -m scim_desktop ARGS...`` (which must print its ``Base URL``) in a subprocess;
    ``stdout`` / ``stderr`` collect its lines, ``port`` is where it listens."""

    def __init__(
        self, args: list[str], what: str, preexec_fn: Callable[[], None] | None = None
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scim_desktop", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=preexec_fn,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        for stream, lines in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr)):
            threading.Thread(target=self._pump, args=(stream, lines), daemon=True).start()
        deadline = time.monotonic() + 30
        self.port = 0
        while not self.port:
            for line in list(self.stdout) + list(self.stderr):
                if m := BASE_URL_RE.search(line):
                    self.port = int(m.group(1))
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"the {what} did not start: {self.stderr[-5:]}")
            time.sleep(0.05)
        self.pid = self.proc.pid

    @staticmethod
    def _pump(stream: IO[str], lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def status_kb(self, key: str) -> int:
        """A kB figure of /proc/PID/status (``VmRSS``, ``VmHWM``: the peak); 0 if absent."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def rss_mb(self) -> float:
        kb = self.status_kb("VmRSS")
        return kb / 1024 if kb else float("nan")

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime

    def sockets(self) -> int:
        count = 0
        for fd in Path(f"/proc/{self.pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                count += os.readlink(fd).startswith("socket:")
        return count

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
