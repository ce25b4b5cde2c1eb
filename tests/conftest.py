"""Shared fixtures: real servers on ephemeral ports, real files under tmp_path."""

from __future__ import annotations

import os

# Qt must never need a display in tests (GUI tests render offscreen).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scim_desktop.config import AuthConfig, ServerConfig
from scim_desktop.server.runner import ServerThread
from tests.scim_client import ScimClient

TOKEN = "test-token-0123456789"


class RecordingSink:
    """Collects every published event (thread-safe enough: list.append is atomic)."""

    def __init__(self) -> None:
        self.events: list[object] = []

    def publish(self, event: object) -> None:
        self.events.append(event)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "scim.json"


@pytest.fixture
def server(db_path: Path, sink: RecordingSink) -> Iterator[ServerThread]:
    config = ServerConfig(
        host="127.0.0.1", port=0, db_path=db_path, auth=AuthConfig("bearer", token=TOKEN)
    )
    thread = ServerThread(config, sink)
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
def client(server: ServerThread) -> Iterator[ScimClient]:
    c = ScimClient(server.base_url, token=TOKEN)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def served() -> Iterator[list[Any]]:
    """Command-line processes a test started (``tests/test_cli.py Served``): killed at the end
    if they are still running."""
    started: list[Any] = []
    yield started
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(10)
