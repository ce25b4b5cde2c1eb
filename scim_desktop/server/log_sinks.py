"""Sinks for headless mode: one text line or one JSON object per request."""

from __future__ import annotations

import threading
from typing import IO

import orjson

from scim_desktop.server.events import Event, RequestRecord


class TextSink:
    """``time method path status ms [okta label]`` per request."""

    wants_changes = False  # resource changes are not logged; skip rendering them
    wants_bodies = False  # one line per request: no bodies

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def publish(self, event: Event) -> None:
        if not isinstance(event, RequestRecord):
            return
        target = event.path + (f"?{event.query}" if event.query else "")
        line = f"{event.time} {event.method:<6} {target} {event.status} {event.duration_ms:.1f}ms"
        if event.okta_label:
            line += f"  [{event.okta_label}]"
        if event.fault:
            line += f"  FAULT: {event.fault}"
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass  # a closed pipe must not take the server down


class JsonLinesSink:
    """One JSON object per request on its own line (secrets already redacted)."""

    wants_changes = False

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def publish(self, event: Event) -> None:
        if not isinstance(event, RequestRecord):
            return
        data = {
            "time": event.time,
            "method": event.method,
            "path": event.path,
            "query": event.query,
            "status": event.status,
            "duration_ms": event.duration_ms,
            "client": event.client,
            "request": {"headers": event.request_headers, "body": event.request_body},
            "response": {"headers": event.response_headers, "body": event.response_body},
            "okta_step": event.okta_step,
            "okta_label": event.okta_label,
            "okta_explanation": event.okta_explanation,
            "fault": event.fault,
            **event.extra,
        }
        line = orjson.dumps(data).decode()
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass
