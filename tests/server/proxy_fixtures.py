"""Upstreams for the proxy tests, on real sockets: a scriptable HTTP/1.1 server (stdlib
``http.server`` on its own thread, keep-alive) that records what reached it and answers what
the test says, including garbage; and helpers to start a proxy-mode ServerThread."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from scim_desktop.config import AuthConfig, ServerConfig, UpstreamConfig
from scim_desktop.core.faults import FaultRule
from scim_desktop.server.runner import ServerThread


@dataclass
class Seen:
    """One request as the upstream received it."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    peer: tuple[str, int]

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return ", ".join(values) if values else None


#: An answer: (status, [(name, value)], body), or raw bytes written as they are (then the
#: connection closes).
Answer = tuple[int, list[tuple[str, str]], bytes] | bytes


def scim_answer(seen: Seen) -> Answer:
    """The default: 200 with a small SCIM body echoing what arrived."""
    body = orjson.dumps(
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": 0,
            "Resources": [],
            "itemsPerPage": 0,
            "startIndex": 1,
        }
    )
    return 200, [("Content-Type", "application/scim+json")], body


@dataclass
class ScriptedUpstream:
    answer: Callable[[Seen], Answer] = scim_answer
    seen: list[Seen] = field(default_factory=list)
    peers: set[tuple[str, int]] = field(default_factory=set)
    open_connections: int = 0
    port: int = 0
    #: Close each connection after its answer without saying so (a keep-alive answer from a
    #: server whose idle timeout is zero).
    close_silently: bool = False
    _sockets: set[socket.socket] = field(default_factory=set)
    _server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/scim"

    def start(self, port: int = 0) -> ScriptedUpstream:
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                upstream.open_connections += 1
                upstream._sockets.add(self.connection)

            def finish(self) -> None:
                upstream.open_connections -= 1
                upstream._sockets.discard(self.connection)
                super().finish()

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(
                    self.command, self.path, list(self.headers.items()), body, self.client_address
                )
                upstream.seen.append(seen)
                upstream.peers.add(self.client_address)
                answer = upstream.answer(seen)
                if isinstance(answer, bytes):
                    self.wfile.write(answer)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                status, headers, data = answer
                self.send_response_only(status)
                names = {n.lower() for n, _ in headers}
                for name, value in headers:
                    self.send_header(name, value)
                if "content-length" not in names and "transfer-encoding" not in names:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                if upstream.close_silently:
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for sock in list(self._sockets):  # kept-alive connections end too: the server is gone
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_proxy(
    tmp_path: Path,
    upstream: UpstreamConfig,
    sink: Any,
    *,
    auth: AuthConfig | None = None,
    faults: tuple[FaultRule, ...] = (),
    name: str = "proxy",
) -> ServerThread:
    config = ServerConfig(
        host="127.0.0.1",
        port=0,
        db_path=tmp_path / name / "proxy.json",
        auth=auth or AuthConfig("none"),
        faults=faults,
        upstream=upstream,
    )
    thread = ServerThread(config, sink, name=name)
    thread.start()
    return thread


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
