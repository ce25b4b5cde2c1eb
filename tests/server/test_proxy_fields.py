"""Repeated response fields through the proxy (issue 14 review): an upstream's several
``Set-Cookie`` lines reach the client as several lines (joined with commas they would be one
broken cookie, RFC 6265 §3), on real sockets; the record keeps one text per field, the cookies
hidden. And ``encode_head`` writing a list of values as repeated lines, still refusing a line
break in any of them."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from scim_desktop.config import UpstreamConfig
from scim_desktop.server.http1_head import encode_head
from scim_desktop.server.runner import ServerThread
from tests.conftest import RecordingSink
from tests.server.proxy_fixtures import ScriptedUpstream, Seen, start_proxy
from tests.server.test_proxy import last_record

COOKIES = ["sid=abc-session-1; Path=/; HttpOnly", "pref=x; Expires=Wed, 09 Jun 2027 10:18:14 GMT"]


@pytest.fixture
def scripted() -> Iterator[ScriptedUpstream]:
    upstream = ScriptedUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture
def proxy(
    tmp_path: Path, scripted: ScriptedUpstream, sink: RecordingSink
) -> Iterator[ServerThread]:
    def answer(seen: Seen) -> tuple[int, list[tuple[str, str]], bytes]:
        return (
            200,
            [
                ("Content-Type", "application/scim+json"),
                ("Set-Cookie", COOKIES[0]),
                ("X-Trace", "one"),
                ("Set-Cookie", COOKIES[1]),
                ("X-Trace", "two"),
            ],
            b'{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],'
            b'"totalResults":0,"Resources":[]}',
        )

    scripted.answer = answer
    thread = start_proxy(tmp_path, UpstreamConfig(scripted.url), sink)
    yield thread
    thread.stop()


def test_repeated_fields_reach_the_client_on_their_own_lines(
    proxy: ServerThread, sink: RecordingSink
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    conn.request("GET", "/scim/v2/Users")
    reply = conn.getresponse()
    reply.read()
    conn.close()
    assert reply.status == 200
    assert reply.msg.get_all("Set-Cookie") == COOKIES  # two lines, each cookie whole
    assert reply.msg.get_all("X-Trace") == ["one", "two"]
    record = last_record(sink)
    assert record.response_headers["Set-Cookie"] == "***"
    assert record.response_headers["X-Trace"] == "one, two"
    assert record.response_headers["Content-Type"] == "application/scim+json"
    assert "abc-session-1" not in repr(record)


def test_encode_head_writes_a_list_as_repeated_lines() -> None:
    head = encode_head(200, {"Set-Cookie": ["a=1", "b=2"], "Content-Length": "0"})
    assert (
        head
        == b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n"
    )
    with pytest.raises(ValueError, match="line break"):
        encode_head(200, {"Set-Cookie": ["a=1", "b=2\r\nX-Injected: 1"]})
