"""The client-side tools against hostile input: ``okta_sim``'s client (which ``scim-desktop
check`` uses) against a raw-socket server that misbehaves, and ``scim-desktop coverage`` against
odd or hostile files. Real sockets on ephemeral ports, real files under ``tmp_path``; short
configurable timeouts and caps, outcomes asserted (never timings)."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote
from xml.etree import ElementTree

import pytest

from scim_desktop.check.runner import CheckOptions, Runner, Unreachable
from scim_desktop.cli import main
from scim_desktop.core.filter_parse import Compare, parse, parse_path
from scim_desktop.okta_sim import (
    MAX_IMPORT_PAGES,
    OktaSimulator,
    group_filter_path,
    remove_member_ops,
    revoke_ops,
    user_filter_path,
)
from scim_desktop.server.tls import generate_self_signed

#: A handler gets the accepted socket and the request (method, target, head, body); it writes
#: whatever answer it likes, and the connection is closed after it returns.
Handler = Callable[[socket.socket, "Request"], None]


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str
    head: bytes
    body: bytes


@dataclass
class HostileServer:
    """A one-request-per-connection HTTP server on 127.0.0.1 whose answers ``handler`` writes
    byte by byte as it likes. Every request it read is in ``requests``."""

    handler: Handler
    tls: ssl.SSLContext | None = None
    requests: list[Request] = field(default_factory=list)
    sock: socket.socket = field(init=False)
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/scim/v2"

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            try:
                if self.tls is not None:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                request = read_request(conn)
                if request is None:
                    return
                self.requests.append(request)
                self.handler(conn, request)
            except OSError:
                pass  # the client gave up (what several tests want)

    def close(self) -> None:
        self.stopping.set()
        self.sock.close()


def read_request(conn: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
    return Request(method, target, head, body)


def answer(status: int, body: bytes, *extra: str) -> bytes:
    lines = [f"HTTP/1.1 {status} X", "Content-Type: application/scim+json"]
    lines += [f"Content-Length: {len(body)}", "Connection: close", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
def self_signed(tmp_path: Path) -> ssl.SSLContext:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    generate_self_signed(cert, key, ["127.0.0.1"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def hostile() -> Iterator[Callable[[Handler], HostileServer]]:
    servers: list[HostileServer] = []

    def start(handler: Handler, tls: ssl.SSLContext | None = None) -> HostileServer:
        servers.append(HostileServer(handler, tls))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _endless(conn: socket.socket, request: Request) -> None:
    """A 200 whose body never ends (no length: close-delimited), 64 KB at a time."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\n\r\n[")
    chunk = b"{}," * 20000
    deadline = time.monotonic() + 20
    with contextlib.suppress(OSError):
        while time.monotonic() < deadline:
            conn.sendall(chunk)


# --- the client (okta_sim) -----------------------------------------------------------------------
def test_an_endless_answer_is_cut_at_the_cap_and_is_no_answer(
    hostile: Callable[[Handler], HostileServer],
) -> None:
    server = hostile(_endless)
    sim = OktaSimulator(server.base_url, token="t0ken", timeout=15, max_answer=256 * 1024)
    res = sim.request("GET", "/Users")
    assert res.status == 0 and res.body is None and res.text == ""
    assert "more than 256 KB" in res.error and "200" in res.error


def test_a_trickled_answer_meets_the_whole_request_deadline(
    hostile: Callable[[Handler], HostileServer],
) -> None:
    """One byte every 0.1 s: each read gets a byte long before the socket timeout, so only a
    deadline for the whole request stops it."""

    def trickle(conn: socket.socket, request: Request) -> None:
        for byte in answer(200, b'{"Resources": []}' + b" " * 400):
            conn.sendall(bytes([byte]))
            time.sleep(0.1)

    server = hostile(trickle)
    sim = OktaSimulator(server.base_url, token="t0ken", timeout=1.0)
    res = sim.request("GET", "/Users")
    assert res.status == 0 and "no answer within 1 s" in res.error


def test_endless_interim_answers_meet_the_deadline(
    hostile: Callable[[Handler], HostileServer],
) -> None:
    """http.client skips 100 Continue answers in a loop of its own: without a deadline for the
    whole request, an endless stream of them holds the client for ever."""

    def interim(conn: socket.socket, request: Request) -> None:
        with contextlib.suppress(OSError):
            for _ in range(600):
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                time.sleep(0.01)

    server = hostile(interim)
    res = OktaSimulator(server.base_url, timeout=1.0).request("GET", "/Users")
    assert res.status == 0 and "no answer within 1 s" in res.error


def test_a_close_delimited_body_cut_by_the_deadline_is_not_taken_as_whole(
    hostile: Callable[[Handler], HostileServer],
) -> None:
    """An HTTP/1.0 answer without a length ends when the connection does: the deadline ending
    it must not make half a body look like a whole one."""

    def slow_close_delimited(conn: socket.socket, request: Request) -> None:
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/scim+json\r\n\r\n")
        conn.sendall(b'{"totalResults": 1, "Resources": [{"id": "a"}]}')
        time.sleep(3)  # ...and the connection stays open: the body may go on

    server = hostile(slow_close_delimited)
    res = OktaSimulator(server.base_url, timeout=1.0).request("GET", "/Users")
    assert res.status == 0 and res.body is None and "no answer within 1 s" in res.error


def test_a_close_delimited_body_is_read_whole(hostile: Callable[[Handler], HostileServer]) -> None:
    def close_delimited(conn: socket.socket, request: Request) -> None:
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/scim+json\r\n\r\n")
        conn.sendall(b'{"totalResults": 1, "Resources": [{"id": "a"}]}')

    server = hostile(close_delimited)
    sim = OktaSimulator(server.base_url, timeout=5)
    for _ in range(2):  # and the next request opens a new connection
        res = sim.request("GET", "/Users")
        assert res.status == 200 and res.body["Resources"] == [{"id": "a"}]


def test_deeply_nested_or_undecodable_json_is_no_body_not_a_crash(
    hostile: Callable[[Handler], HostileServer],
) -> None:
    bodies = [b"[" * 200_000, b"\xff\xfe{\x00", b'{"a": 1e999999}', b"1" * 10_000]

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(answer(200, bodies[int(request.target.rsplit("/", 1)[1])]))

    server = hostile(handler)
    sim = OktaSimulator(server.base_url, timeout=5)
    for n in range(len(bodies)):
        res = sim.request("GET", f"/x/{n}")
        assert res.status == 200
        assert res.body is None or n == 2  # 1e999999 is JSON (inf), the rest is not
        assert res.text  # kept as received (undecodable bytes replaced)


@pytest.mark.parametrize(
    ("rid", "segment"),
    [
        ("a/b", "a%2Fb"),
        ("../../admin", "..%2F..%2Fadmin"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("x?y=1#z", "x%3Fy%3D1%23z"),
        ("a b", "a%20b"),
        ("a\r\nX-Evil: 1", "a%0D%0AX-Evil%3A%201"),
        ("%2e%2e", "%252e%252e"),
    ],
)
def test_an_id_from_the_server_is_one_path_segment(
    hostile: Callable[[Handler], HostileServer], rid: str, segment: str
) -> None:
    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(answer(204, b""))

    server = hostile(handler)
    sim = OktaSimulator(server.base_url, token="t0ken", timeout=5)
    sim.get_user(rid)
    sim.put_user(rid, {"id": rid})
    sim.patch_user(rid, [])
    sim.delete_user(rid)
    sim.get_group(rid)
    sim.patch_group(rid, [])
    sim.delete_group(rid)
    targets = [r.target for r in server.requests]
    want = [f"/scim/v2/{kind}/{segment}" for kind in ("Users",) * 4 + ("Groups",) * 3]
    assert targets == want
    assert not any(
        line.startswith(b"X-Evil") for r in server.requests for line in r.head.split(b"\r\n")
    )


def test_the_spec_suite_reads_a_listed_id_as_one_segment(
    hostile: Callable[[Handler], HostileServer],
) -> None:
    listed = {"totalResults": 1, "Resources": [{"id": "../Groups/g1", "userName": "u"}]}

    def handler(conn: socket.socket, request: Request) -> None:
        if request.target.startswith("/scim/v2/Users?count=1"):
            conn.sendall(answer(200, json.dumps(listed).encode()))
        elif request.method == "POST":
            conn.sendall(answer(201, json.dumps({"id": "a?b", "userName": "u"}).encode()))
        else:
            conn.sendall(answer(404, b""))

    server = hostile(handler)
    steps = dict(OktaSimulator(server.base_url, timeout=5).spec_suite("u@example.com"))
    assert {"get_user", "read_back"} <= set(steps)
    targets = [r.target for r in server.requests]
    assert "/scim/v2/Users/..%2FGroups%2Fg1" in targets
    assert "/scim/v2/Users/a%3Fb" in targets
    assert not any(t.startswith("/scim/v2/Groups/") for t in targets)


def test_a_redirect_is_an_answer_not_followed(hostile: Callable[[Handler], HostileServer]) -> None:
    """Okta's client does not follow redirects; above all the credential must not go to the
    host a Location names."""
    elsewhere = hostile(lambda conn, request: conn.sendall(answer(200, b"{}")))

    def redirect(conn: socket.socket, request: Request) -> None:
        conn.sendall(answer(307, b"", f"Location: {elsewhere.base_url}/Users"))

    server = hostile(redirect)
    res = OktaSimulator(server.base_url, token="t0ken-secret", timeout=5).request("GET", "/Users")
    assert res.status == 307
    assert elsewhere.requests == []


def _endless_pages(resource_bytes: int) -> Handler:
    """A user list whose totalResults never ends: every page holds ``count`` users, each
    carrying ``resource_bytes`` of padding."""

    def handler(conn: socket.socket, request: Request) -> None:
        query = dict(q.split("=", 1) for q in request.target.split("?", 1)[1].split("&"))
        start, count = int(query["startIndex"]), int(query["count"])
        users = [
            {"id": f"u{start + i}", "userName": f"u{start + i}", "pad": "x" * resource_bytes}
            for i in range(count)
        ]
        page = {"totalResults": 10**18, "startIndex": start, "Resources": users}
        conn.sendall(answer(200, json.dumps(page).encode()))

    return handler


def test_an_endless_import_walk_stops_at_the_byte_budget(
    hostile: Callable[[Handler], HostileServer],
) -> None:
    server = hostile(_endless_pages(1000))  # ~100 KB a page
    sim = OktaSimulator(server.base_url, timeout=5, max_walk_bytes=350_000)
    pages = sim.import_users()
    assert len(pages) == 4 and all(p.status == 200 for p in pages)
    assert sim.walk_cut == "after 341 KB of answers"
    assert len(server.requests) == 4


def test_an_endless_import_walk_stops_at_the_page_cap(
    hostile: Callable[[Handler], HostileServer],
) -> None:
    server = hostile(_endless_pages(0))
    sim = OktaSimulator(server.base_url, timeout=5)
    pages = sim.import_users(count=1)
    assert len(pages) == MAX_IMPORT_PAGES and sim.walk_cut == f"after {MAX_IMPORT_PAGES} pages"
    # A walk that ends says nothing.
    assert len(sim.import_users(count=0)) == 1 and sim.walk_cut == ""


def _not_found(conn: socket.socket, request: Request) -> None:
    conn.sendall(answer(404, b""))


def test_check_refuses_a_self_signed_certificate_in_one_line(
    hostile: Callable[..., HostileServer],
    self_signed: ssl.SSLContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = hostile(_not_found, self_signed)
    assert main(["check", server.base_url, "--token", "t0ken-secret"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("scim-desktop check: error: cannot reach https://")
    assert "CERTIFICATE_VERIFY_FAILED" in err and "--insecure" in err
    assert server.requests == []  # nothing was sent over the refused connection
    # --insecure: the checks run (and fail on the 404s).
    assert main(["check", server.base_url, "--token", "t0ken-secret", "--insecure"]) == 1
    assert server.requests


def test_a_tls_handshake_that_never_ends_meets_the_deadline(
    hostile: Callable[..., HostileServer],
) -> None:
    """A server that accepts the connection and says nothing: the handshake waits on it."""
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        url = f"https://127.0.0.1:{silent.getsockname()[1]}/scim/v2"
        with pytest.raises(Unreachable, match="no answer within 1 s"):
            Runner(CheckOptions(url, token="t0ken-secret", timeout=1.0)).run()
    finally:
        silent.close()


def test_a_server_that_closes_mid_headers_fails_the_checks(
    hostile: Callable[..., HostileServer],
) -> None:
    """http.client takes an answer cut in its headers as ended there (a 200 with no body
    here): every check fails on it, none passes and nothing crashes."""

    def half(conn: socket.socket, request: Request) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Ty")

    server = hostile(half)
    report = Runner(CheckOptions(server.base_url, token="t0ken-secret", timeout=5)).run()
    assert report.passed == 0 and report.failed > 10


def test_no_request_follows_a_location_to_another_host(
    hostile: Callable[..., HostileServer],
) -> None:
    """Redirects, Location and meta.location naming another host: the checker (cleanup
    included) sends nothing there, so the credential stays with the server under test."""
    elsewhere = hostile(lambda conn, request: conn.sendall(answer(200, b"{}")))
    away = f"{elsewhere.base_url}/Users/x"

    def handler(conn: socket.socket, request: Request) -> None:
        if request.method == "POST":
            sent = json.loads(request.body)
            made = {**sent, "id": "u1", "meta": {"location": away}}
            conn.sendall(answer(201, json.dumps(made).encode(), f"Location: {away}"))
        elif request.method == "DELETE":
            conn.sendall(answer(308, b"", f"Location: {away}"))
        else:
            conn.sendall(answer(302, b"", f"Location: {away}"))

    server = hostile(handler)
    report = Runner(CheckOptions(server.base_url, token="t0ken-secret", timeout=5)).run()
    assert report.failed and "DELETE answered 308" in " ".join(report.cleanup)
    assert elsewhere.requests == []
    assert any(r.method == "DELETE" for r in server.requests)


def test_what_the_server_sends_in_a_bad_status_line_is_one_line_without_escapes(
    hostile: Callable[..., HostileServer], capsys: pytest.CaptureFixture[str]
) -> None:
    def garbage(conn: socket.socket, request: Request) -> None:
        conn.sendall(b"\x1b[2J\x1b[31mHACKED " + b"x" * 5000 + b"\r\nsecond line\r\n\r\n")

    server = hostile(garbage)
    res = OktaSimulator(server.base_url, timeout=5).request("GET", "/Users")
    assert res.status == 0 and res.error.startswith("BadStatusLine: \\x1b[2J\\x1b[31mHACKED")
    assert res.error.isprintable() and len(res.error) <= 200
    assert main(["check", server.base_url, "--token", "t0ken-secret"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and "\r" not in err


@pytest.mark.parametrize(
    "rid", ['a"b', "a\\b", 'x"] or members[value pr', 'x" or value pr or value eq "y', "plain-id"]
)
def test_an_id_in_a_filter_is_one_json_string(rid: str) -> None:
    """RFC 7644 §3.4.2.2: the comparison value is a JSON string; a quote in a server's id
    ended it early (a broken filter, or another filter)."""
    rtype = {"schema": "urn:okta:scim:schemas:core:1.0:Entitlement", "name": "License"}
    for path in (remove_member_ops(rid)[0]["path"], revoke_ops(rtype, {"id": rid})[0]["path"]):
        parsed = parse_path(path)
        assert isinstance(parsed.filter, Compare) and parsed.filter.value == rid
    for make, attr in ((user_filter_path, "userName"), (group_filter_path, "displayName")):
        text = unquote(make(rid).split("filter=", 1)[1].split("&", 1)[0])
        node = parse(text)
        assert isinstance(node, Compare) and (node.path.attr, node.value) == (attr, rid)


# --- the checker over those answers --------------------------------------------------------------
def _lifecycle(pages: Handler, ids: str = "u-1") -> Handler:
    """Creates answered 201 with ``ids`` as the id, list pages by ``pages``, the rest 404."""

    def handler(conn: socket.socket, request: Request) -> None:
        if request.method == "POST":
            made = {**json.loads(request.body), "id": ids}
            conn.sendall(answer(201, json.dumps(made).encode()))
        elif request.method == "GET" and "startIndex=" in request.target:
            pages(conn, request)
        elif request.method == "DELETE":
            conn.sendall(answer(204, b""))
        else:
            conn.sendall(answer(404, b""))

    return handler


def test_cleanup_deletes_an_odd_id_as_one_path_segment(
    hostile: Callable[..., HostileServer],
) -> None:
    def empty(conn: socket.socket, request: Request) -> None:
        conn.sendall(answer(200, b'{"totalResults": 0, "Resources": []}'))

    server = hostile(_lifecycle(empty, ids="../Groups/g?x=1"))
    Runner(CheckOptions(server.base_url, token="t0ken-secret", suites=("crud",))).run()
    deletes = [r.target for r in server.requests if r.method == "DELETE"]
    assert deletes == ["/scim/v2/Users/..%2FGroups%2Fg%3Fx%3D1"]


def test_an_import_walk_cut_by_the_budget_is_said_not_blamed_on_the_server(
    hostile: Callable[..., HostileServer],
) -> None:
    """totalResults 10**6 and pages of ~170 KB: the walk stops at 16 MB of answers. That is
    the checker's limit, not a server that ended its walk early."""

    def pages(conn: socket.socket, request: Request) -> None:
        query = dict(q.split("=", 1) for q in request.target.split("?", 1)[1].split("&"))
        start = int(query["startIndex"])
        users = [
            {"id": f"u{start + i}", "userName": f"u{start + i}@example.com", "pad": "x" * 1700}
            for i in range(100)
        ]
        page = {"totalResults": 10**6, "startIndex": start, "itemsPerPage": 100}
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], **page}
        conn.sendall(answer(200, json.dumps({**body, "Resources": users}).encode()))

    server = hostile(_lifecycle(pages))
    report = Runner(CheckOptions(server.base_url, token="t0ken-secret", suites=("crud",))).run()
    walk = next(c for c in report.checks if c.name.startswith("import users"))
    assert walk.status == "pass", walk.detail
    assert "the checker stopped after 16 MB of answers" in walk.detail
    assert 90 < len(walk.requests) < 110


def test_control_characters_in_an_answer_leave_the_junit_xml_well_formed(
    hostile: Callable[..., HostileServer], tmp_path: Path
) -> None:
    """XML 1.0 has no NUL, ESC or most C0 characters, escaped or not: a server's answer
    carrying them made a JUnit file no CI parser reads."""
    evil = b"<script>\x00\x01\x1b[31m\x0b\x0c\xff ]]>"
    server = hostile(lambda conn, request: conn.sendall(answer(400, evil)))
    out = tmp_path / "r.xml"
    args = ["--suite", "spec", "--junit", str(out)]
    assert main(["check", server.base_url, "--token", "t0ken-secret", *args]) == 1
    root = ElementTree.parse(out).getroot()
    failures = root.findall(".//failure")
    assert failures and all("\\x1b[31m" in (f.text or "") for f in failures)


def test_a_stop_ends_a_request_under_way(hostile: Callable[..., HostileServer]) -> None:
    """A window's Cancel (the stop flag) ends a request the server never answers: it raises
    InterruptedError instead of waiting for the deadline and giving a timeout."""
    server = hostile(lambda conn, request: time.sleep(20))
    sim = OktaSimulator(server.base_url, timeout=15)
    threading.Timer(0.3, sim.stop.set).start()
    with pytest.raises(InterruptedError):
        sim.request("GET", "/Users")


def test_a_cancelled_check_still_cleans_up_on_a_server_that_hangs(
    hostile: Callable[..., HostileServer],
) -> None:
    """Cancel during a hanging answer: the check stops there and cleanup runs (on a fresh
    connection, with its own deadline)."""
    cancel = threading.Event()

    def handler(conn: socket.socket, request: Request) -> None:
        if request.method == "POST":
            made = {**json.loads(request.body), "id": "u-1"}
            conn.sendall(answer(201, json.dumps(made).encode()))
        elif request.method == "GET" and request.target.startswith("/scim/v2/Users/u-1"):
            cancel.set()  # the read after the create hangs; the window's Cancel comes
            time.sleep(20)
        elif request.method == "DELETE":
            conn.sendall(answer(204, b""))
        else:
            conn.sendall(answer(200, b'{"totalResults": 0, "Resources": []}'))

    server = hostile(handler)
    options = CheckOptions(server.base_url, token="t0ken-secret", suites=("crud",), timeout=15)
    report = Runner(options, cancel=cancel).run()
    assert report.interrupted
    assert report.checks[-1].status == "skip" and report.checks[-1].detail == "cancelled"
    assert [r.target for r in server.requests if r.method == "DELETE"] == ["/scim/v2/Users/u-1"]
