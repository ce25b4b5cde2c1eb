"""Proxy mode (issue 14) against attackers: a client on the internet trying to leave the
upstream's SCIM base, and an upstream that answers badly (a buggy or hostile server). Real
sockets throughout: a proxy-mode ServerThread, a raw-socket upstream written here (it can
answer anything, byte for byte), raw-socket clients."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scim_desktop.config import UpstreamConfig
from scim_desktop.server.runner import ServerThread
from tests.conftest import RecordingSink
from tests.server.proxy_fixtures import ScriptedUpstream, start_proxy

#: What the raw upstream does with one request: gets the request head (bytes, without the
#: blank line) and the connection, writes what it likes; returns False to close the connection.
Script = Callable[[bytes, socket.socket], bool]

OK_BODY = b'{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0}'


def ok_answer(body: bytes = OK_BODY) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )


class RawUpstream:
    """A keep-alive HTTP/1.1 server on a raw socket whose answers are a script's bytes."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.heads: list[bytes] = []
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._clients: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/scim"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            self._clients.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with contextlib.suppress(OSError), conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                while len(buf) < length:
                    buf += conn.recv(65536)
                buf = buf[length:]
                self.heads.append(head)
                if not self.script(head, conn):
                    return

    def close(self) -> None:
        self._sock.close()
        for conn in self._clients:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


def exchange(port: int, request: bytes, timeout: float = 10) -> tuple[int, bytes, bytes]:
    """Send one raw request on a new connection; the status, head and body of the answer
    (read by its Content-Length, or to the close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            more = sock.recv(65536)
            if not more:
                break
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        while length is not None and len(body) < length:
            more = sock.recv(65536)
            if not more:
                break
            body += more
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return status, head, body


def get(port: int, path: str, extra: str = "") -> tuple[int, bytes, bytes]:
    return exchange(port, f"GET {path} HTTP/1.1\r\nHost: proxy.test\r\n{extra}\r\n".encode())


@pytest.fixture
def proxies() -> Iterator[list[ServerThread]]:
    started: list[ServerThread] = []
    yield started
    for proxy in started:
        proxy.stop()


@pytest.fixture
def raw_upstreams() -> Iterator[list[RawUpstream]]:
    started: list[RawUpstream] = []
    yield started
    for upstream in started:
        upstream.close()


@pytest.fixture
def scripted() -> Iterator[ScriptedUpstream]:
    upstream = ScriptedUpstream().start()
    yield upstream
    upstream.stop()


# --- a client trying to leave the upstream's SCIM base ---------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/scim/v2/..%2f..%2fadmin",  # decoded before resolving (nginx, many routers)
        "/scim/v2/..%2Fadmin",
        "/scim/v2/%2e%2e%2fadmin",
        "/scim/v2/..\\admin",  # a backslash as a separator (Windows servers, some routers)
        "/scim/v2/..%5cadmin",
        "/scim/v2/..;/admin",  # a path parameter cut off before resolving (Tomcat, Jetty)
        "/scim/v2/.;x/admin",
        "/scim/v2/%252e%252e/admin",  # decoded twice (a second proxy in front of the app)
        "/scim/v2/..%00/admin",  # cut at the NUL (C servers)
        "/scim/v2/Users/%2E%2e",
    ],
)
def test_encoded_dot_segments_are_refused_and_never_forwarded(
    tmp_path: Path,
    scripted: ScriptedUpstream,
    sink: RecordingSink,
    proxies: list[ServerThread],
    path: str,
) -> None:
    proxy = start_proxy(tmp_path, UpstreamConfig(scripted.url), sink)
    proxies.append(proxy)
    status, _, body = get(proxy.port, path)
    assert status == 400, body
    assert b"Dot segments" in body
    assert scripted.seen == []
    # What only looks like one passes (an id holding dots or an encoded slash).
    for fine in ("/scim/v2/Users/a..b", "/scim/v2/Users/..a", "/scim/v2/Users/x%2Fy"):
        assert get(proxy.port, fine)[0] == 200
    assert [s.target for s in scripted.seen] == [
        "/api/scim/Users/a..b",
        "/api/scim/Users/..a",
        "/api/scim/Users/x%2Fy",
    ]


def test_a_target_starting_with_two_slashes_is_never_sent_upstream(
    tmp_path: Path, scripted: ScriptedUpstream, sink: RecordingSink, proxies: list[ServerThread]
) -> None:
    # An upstream at its root: "/scim/v2//evil.example/x" would be "//evil.example/x" there,
    # an authority to a server parsing targets as relative references.
    proxy = start_proxy(tmp_path, UpstreamConfig(f"http://127.0.0.1:{scripted.port}"), sink)
    proxies.append(proxy)
    status, _, body = get(proxy.port, "/scim/v2//evil.example/x")
    assert status == 400, body
    assert scripted.seen == []
    assert get(proxy.port, "/scim/v2/Users")[0] == 200
    assert [s.target for s in scripted.seen] == ["/Users"]
