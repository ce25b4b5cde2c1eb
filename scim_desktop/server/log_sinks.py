"""Sinks for headless mode: one text line or one JSON object per request."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import IO

import orjson

from scim_desktop.server.events import Event, RequestRecord, escape_controls, record_json

#: Lines are flushed at most this long after they were written (a flush per request was a
#: syscall per request on the server thread).
FLUSH_INTERVAL_S = 0.1


class _LineSink:
    """Writes lines to a stream from the server thread; a small daemon thread flushes them
    within FLUSH_INTERVAL_S, and :meth:`close` flushes what is left."""

    wants_changes = False  # resource changes are not logged; skip rendering them

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._closed = False
        threading.Thread(target=self._flusher, name="log-flush", daemon=True).start()

    def write_line(self, line: str) -> None:
        with self._lock:
            try:
                self.stream.write(line + "\n")
            except (OSError, ValueError):
                return  # a closed pipe must not take the server down
        if not self._dirty.is_set():  # set() takes a lock and notifies: once per flush
            self._dirty.set()

    def _flusher(self) -> None:
        while not self._closed:
            self._dirty.wait()
            time.sleep(FLUSH_INTERVAL_S)
            self._dirty.clear()
            self.flush()

    def flush(self) -> None:
        with self._lock, contextlib.suppress(OSError, ValueError):
            self.stream.flush()

    def close(self) -> None:
        """Flush everything written (call when the server has stopped)."""
        self._closed = True
        self.flush()
        self._dirty.set()


class TextSink(_LineSink):
    """``time method path status ms [okta label]`` per request."""

    wants_bodies = False  # one line per request: no headers or bodies

    def publish(self, event: Event) -> None:
        if not isinstance(event, RequestRecord):
            return
        target = event.path + (f"?{event.query}" if event.query else "")
        line = f"{event.time} {event.method:<6} {target} {event.status} {event.duration_ms:.1f}ms"
        if event.okta_label:
            line += f"  [{event.okta_label}]"
        if event.fault:
            line += f"  FAULT: {event.fault}"
        self.write_line(escape_controls(line))


class JsonLinesSink(_LineSink):
    """One JSON object per request on its own line (secrets already redacted)."""

    def publish(self, event: Event) -> None:
        if not isinstance(event, RequestRecord):
            return
        self.write_line(orjson.dumps(record_json(event)).decode())
