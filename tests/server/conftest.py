"""Fixtures shared by the server tests: the server in OAuth mode and a client for its pages;
for the proxy tests, a scripted upstream and the proxies a test started (stopped after it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scim_desktop.server.runner import ServerThread
from tests.conftest import RecordingSink
from tests.server.proxy_fixtures import ScriptedUpstream
from tests.server.test_oauth_flow import Http, make_server


@pytest.fixture
def oauth_server(db_path: Path, sink: RecordingSink) -> Iterator[ServerThread]:
    server = make_server(db_path, sink)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def web(oauth_server: ServerThread) -> Http:
    return Http(oauth_server)


@pytest.fixture
def scripted() -> Iterator[ScriptedUpstream]:
    upstream = ScriptedUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture
def proxies() -> Iterator[list[ServerThread]]:
    """The proxy-mode ServerThreads a test appends here are stopped after it."""
    started: list[ServerThread] = []
    yield started
    for proxy in started:
        proxy.stop()
