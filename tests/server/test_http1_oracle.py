"""Our HTTP/1.1 parser (scim_desktop/server/http1.py) proved against h11, a well-kept one.

Hypothesis writes request heads, framings and pipelines, valid and malformed (see
tests/server/h11_oracle.py). For each, ``parse_head`` (heads) or a real ``HttpServer`` on a
loopback port (framing, pipelines) must accept exactly what h11 accepts and hand over the same
requests: method, target, version, header fields, body bytes, the same request boundaries and
the same end of the connection. Where we differ, the difference must be one of those named
below, each with its reason; a difference nobody wrote down fails the test.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from scim_desktop.server.http1 import (
    Connection,
    HttpError,
    HttpServer,
    Refusal,
    Request,
    parse_head,
)
from tests.server.h11_oracle import Got, Sent, h11_read, head_lines, pipeline, served_as

#: Deterministic in CI: the same examples every run, no example database.
FAST = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no "explain" (slow)
)


@dataclass(frozen=True)
class Rule:
    status: int
    reason: str
    #: A request showing the difference (checked against both parsers below).
    example: bytes


#: What we refuse although h11 accepts it, by quirk (see h11_oracle.py), with our status.
STRICTER: dict[str, Rule] = {
    "version-unsupported": Rule(
        505,
        "RFC 9110 §15.6.6, RFC 9112 §2.3: only HTTP/1.0 and HTTP/1.1 are served (issue 12); "
        "h11 reads any HTTP/d.d",
        b"GET / HTTP/1.2\r\nHost: x\r\n\r\n",
    ),
    "target-form": Rule(
        400,
        "RFC 9112 §3.2: a request target is a path, an http(s) URL or '*' (authority-form is "
        "for CONNECT, not implemented); h11 takes any visible characters",
        b"GET example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n",
    ),
    "url-empty-host": Rule(
        400,
        "RFC 9110 §4.2.1: a recipient MUST reject an http(s) URI with an empty host",
        b"GET http:///x HTTP/1.1\r\nHost: x\r\n\r\n",
    ),
    "ctl-in-field": Rule(
        400,
        "RFC 9110 §5.5: a field value is visible characters with SP/HTAB between; h11 lets "
        "other control characters through",
        b"GET / HTTP/1.1\r\nHost: x\r\nA: a\x01b\r\n\r\n",
    ),
    "obs-fold": Rule(
        400,
        "RFC 9112 §5.2: a server MUST reject obsolete line folding or replace it with SP "
        "(h11 replaces it)",
        b"GET / HTTP/1.1\r\nHost: x\r\nA: a\r\n b\r\n\r\n",
    ),
    "host-comma": Rule(
        400,
        "RFC 9112 §3.2: repeated fields are joined with ',' before Host is checked, so a "
        "comma reads as a second Host (400); no DNS host name holds one",
        b"GET / HTTP/1.1\r\nHost: a,b\r\n\r\n",
    ),
    "te-and-length": Rule(
        400,
        "RFC 9112 §6.1: a server MAY reject a request with both Transfer-Encoding and "
        "Content-Length (the request smuggling vector); h11 lets Transfer-Encoding win",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
        b"0\r\n\r\n",
    ),
    "te-http10": Rule(
        400,
        "RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing, answered "
        "with 400 (§6.3); h11 reads the chunks",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    "length-huge": Rule(
        400,
        "RFC 9110 §8.6: lengths are bounded against overflow: at most 18 digits (h11: 20)",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0000000000000000001\r\n\r\nq",
    ),
    "chunk-size-long": Rule(
        400,
        "RFC 9112 §7.1: chunk sizes are bounded against overflow: at most 16 hex digits (h11: 20)",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"00000000000000001\r\nq\r\n0\r\n\r\n",
    ),
    "ctl-in-chunk-line": Rule(
        400,
        "RFC 9112 §7.1.1, §7.1.2: chunk extensions are tokens or quoted strings and trailers "
        "are field lines, so no control characters; h11 takes any extension text",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0;a\x01\r\n\r\n",
    ),
    "bare-lf-in-trailers": Rule(
        400,
        "RFC 9112 §7.1: chunk and trailer lines end with CRLF (a bare LF is tolerated in the "
        "head only, §2.2); h11 also takes one at the end of the trailer section",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n",
    ),
    "body-over-limit": Rule(
        413,
        "RFC 9110 §15.5.14: a body longer than the server's limit is refused unread (the "
        "handler is told its declared length and answers 413); h11 has no limit",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999999999\r\n\r\n",
    ),
}

#: What we accept although h11 refuses it, by quirk, deliberately.
LENIENT: dict[str, Rule] = {
    "leading-empty-line": Rule(
        0,
        "RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request "
        "line (a client's stray CRLF after a body); h11 refuses it",
        b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    ),
    "target-obs-text": Rule(
        0,
        "bytes beyond ASCII in a target (curl sends a typed URL's UTF-8 as is) are kept as "
        "Latin-1, as Tornado's HTTPServer kept them; RFC 9112 §3 allows a 400, h11 answers one",
        b"GET /Users/jos\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
    ),
    "chunk-ext-bws": Rule(
        0,
        "RFC 9112 §7.1.1: chunk-ext = *( BWS ';' BWS ext-name ... ): whitespace before ';' is "
        "valid; h11 refuses it",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1 ;a=b\r\nq\r\n0\r\n\r\n",
    ),
}

#: Framing faults the oracle found accepted by the body framing code (Connection._read_chunked,
#: Connection._content_length) and that are now refused, as by h11: kept as examples.
FOUND_AND_FIXED: dict[str, Rule] = {
    "length-nbsp": Rule(
        400,
        "RFC 9110 §8.6: Content-Length is digits, a list of them separated by ',' and OWS "
        "(SP/HTAB); str.strip also dropped \\xa0 and \\x85",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1,\xa01\r\n\r\nq",
    ),
    "chunk-size-leading-ws": Rule(
        400,
        "RFC 9112 §7.1: chunk-size = 1*HEXDIG, nothing before it (BWS only before ';')",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n 1\r\nq\r\n0\r\n\r\n",
    ),
    "trailer-malformed": Rule(
        400,
        "RFC 9112 §7.1.2: trailer-section = *( field-line CRLF ), obs-fold refused (§5.2)",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon\r\n\r\n",
    ),
}


# --- running our side ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Served:
    """A request our server handed its handler (``status`` 0), or a refusal's status."""

    status: int
    got: Got | None = None
    keep_alive: bool = False


class Recorder:
    """Answers every request with an empty 200 (or a 413 for a body left unread, as ScimServer
    does) and keeps what it was handed."""

    def __init__(self) -> None:
        self.seen: list[Served] = []

    def handle(self, conn: Connection, request: Request) -> None:
        if request.declared_length:
            self.seen.append(Served(413))
            conn.send(413, {"Content-Length": "0"}, b"")
            return
        self.seen.append(Served(0, ours(request), request.keep_alive))
        conn.send(200, {"Content-Length": "0"}, b"")

    def connection_closed(self, conn: Connection) -> None:
        pass

    def refused(self, conn: Connection, refusal: Refusal) -> None:
        self.seen.append(Served(refusal.status))


def ours(request: Request) -> Got:
    headers = {name.lower(): value for name, value in request.headers.items()}
    return Got(request.method, request.target, request.version, headers, request.body)


def serve(data: bytes) -> list[Served]:
    """Send ``data`` to a real HttpServer on a loopback port, end our side, and read until the
    server closes; what its handler was given."""

    async def main() -> list[Served]:
        recorder = Recorder()
        server = HttpServer(recorder, max_body_size=64 * 1024, idle_timeout=10)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        sock.setblocking(False)
        server.add_sockets([sock])
        try:
            reader, writer = await asyncio.open_connection(*sock.getsockname())
            writer.write(data)
            writer.write_eof()
            await asyncio.wait_for(reader.read(), 10)  # until the server closes
            writer.close()
            return recorder.seen
        finally:
            server.stop()
            await server.close_all_connections()

    return asyncio.run(main())


def comparable(got: Got) -> Got:
    """Framing fields aside (h11 rewrites their values; the body compares the framing)."""
    headers = {
        k: v for k, v in got.headers.items() if k not in ("content-length", "transfer-encoding")
    }
    return Got(got.method, got.target, got.version, headers, got.body)


def explain_refusal(quirks: frozenset[str], status: int, h11_status: int | None, what: str) -> None:
    """We refused a request: h11 refused it with the same status, or a STRICTER rule says ours.
    A request with several faults may be refused for another one first: where h11 answers 501
    (a transfer coding it does not know, checked before all else) we may answer 400."""
    if status == h11_status or (status, h11_status) == (400, 501):
        return
    if h11_status is not None and quirks & LENIENT.keys():
        return  # h11 stops at what we let pass; we refuse the request for another fault
    reasons = [q for q in quirks if q in STRICTER and STRICTER[q].status == status]
    assert reasons, (
        f"{what}: we answer {status}, h11 {h11_status or 'accepts'}; quirks {sorted(quirks)}"
    )


def explain_acceptance(quirks: frozenset[str], h11_error: str, what: str) -> None:
    reasons = quirks & LENIENT.keys()
    assert reasons, f"{what}: we accept, h11 refuses ({h11_error}); quirks {sorted(quirks)}"


# --- heads: parse_head against h11 ------------------------------------------------------------
@FAST
@given(head_lines([]))
def test_heads_are_read_as_h11_reads_them(case: tuple[str, set[str]]) -> None:
    text, quirk_set = case
    data, quirks = text.encode("latin-1"), frozenset(quirk_set)
    oracle = h11_read(data)
    try:
        request = parse_head(data)
    except HttpError as exc:
        h11_status = None if oracle.requests else oracle.error_status
        explain_refusal(quirks, exc.status, h11_status, repr(data))
        return
    assert request is not None  # never only empty lines here
    if not oracle.requests:
        explain_acceptance(quirks, oracle.error, repr(data))
        return
    assert ours(request) == served_as(oracle.requests[0]), repr(data)


# --- framing and pipelines: a real server against h11 ------------------------------------------
def _sent_at(sent: list[Sent], offset: int) -> Sent:
    """The generated request the byte at ``offset`` belongs to."""
    start = 0
    for one in sent:
        if offset < start + len(one.data):
            return one
        start += len(one.data)
    return sent[-1]


@settings(FAST, max_examples=200)
@given(pipeline())
def test_framing_and_pipelines_are_read_as_h11_reads_them(sent: list[Sent]) -> None:
    data = b"".join(one.data for one in sent)
    oracle = h11_read(data)
    seen = serve(data)
    what = repr(data)
    for i, served in enumerate(seen):
        request = _sent_at(sent, oracle.offsets[min(i, len(oracle.offsets) - 1)])
        h11_has = i < len(oracle.requests)
        if served.status:
            h11_status = None if h11_has or oracle.at_eof else oracle.error_status
            explain_refusal(request.quirks, served.status, h11_status, f"request {i} of {what}")
            assert i == len(seen) - 1  # a refusal ends the connection
            return
        assert served.got is not None
        if not h11_has:
            explain_acceptance(request.quirks, oracle.error, f"request {i} of {what}")
            return  # the rest of the stream means nothing to h11
        assert comparable(served.got) == comparable(served_as(oracle.requests[i])), (
            f"request {i} of {what}"
        )
        h11_keeps = i < len(oracle.requests) - 1 or not oracle.closed
        if served.keep_alive != h11_keeps:
            # h11 never keeps an HTTP/1.0 connection open; we honour Connection: keep-alive
            # (RFC 9112 Appendix C.2.2), and what follows means nothing to h11.
            assert served.got.version == "HTTP/1.0" and served.keep_alive, f"request {i}: {what}"
            return
    if len(seen) < len(oracle.requests):
        raise AssertionError(f"we read {len(seen)} requests, h11 {len(oracle.requests)}: {what}")
    if oracle.error_status and not oracle.at_eof:
        # h11 refused a request we neither refused nor handed over: that may only be a stub the
        # client never finished (h11 refuses some at their first byte; we wait for the head).
        rest = _sent_at(sent, oracle.offsets[len(seen)])
        assert rest.cut, f"h11 refuses ({oracle.error}), we wait for more: {what}"


# --- the documented differences are real ------------------------------------------------------
def _verdicts(example: bytes) -> tuple[list[Served], bool]:
    """What our server does with ``example``, and whether h11 reads a request from it."""
    return serve(example), bool(h11_read(example).requests)


@pytest.mark.parametrize("quirk", sorted(STRICTER))
def test_each_stricter_rule_is_a_real_difference(quirk: str) -> None:
    rule = STRICTER[quirk]
    seen, h11_reads = _verdicts(rule.example)
    assert h11_reads or h11_read(rule.example).at_eof  # h11 takes it (or waits for the body)
    assert [s.status for s in seen] == [rule.status]


@pytest.mark.parametrize("quirk", sorted(LENIENT))
def test_each_lenient_rule_is_a_real_difference(quirk: str) -> None:
    rule = LENIENT[quirk]
    seen, h11_reads = _verdicts(rule.example)
    assert not h11_reads
    assert [s.status for s in seen] == [0] and seen[0].got is not None


@pytest.mark.parametrize("quirk", sorted(FOUND_AND_FIXED))
def test_framing_faults_the_oracle_found_are_refused(quirk: str) -> None:
    seen, h11_reads = _verdicts(FOUND_AND_FIXED[quirk].example)
    assert not h11_reads
    assert [s.status for s in seen] == [400]


# --- issue 12: the parser fixes -------------------------------------------------------------------
@pytest.mark.parametrize("version", ["HTTP/1.2", "HTTP/1.9", "HTTP/2.0", "HTTP/0.9", "HTTP/3"])
def test_unknown_versions_are_505(version: str) -> None:
    with pytest.raises(HttpError) as info:
        parse_head(f"GET / {version}\r\nHost: x\r\n\r\n".encode())
    assert info.value.status == 505 and version in info.value.detail


def test_absolute_form_needs_a_host_field_on_http_1_1() -> None:
    """RFC 9112 §3.2: the client sends Host even with an absolute-form target, whose authority
    then replaces it (§3.2.2)."""
    with pytest.raises(HttpError) as info:
        parse_head(b"GET http://example.com/scim/v2/Users HTTP/1.1\r\n\r\n")
    assert info.value.status == 400
    assert not h11_read(b"GET http://example.com/scim/v2/Users HTTP/1.1\r\n\r\n").requests
    req = parse_head(b"GET http://u@example.com:8080/scim/v2/Users?x=1 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert req is not None and req.target == "/scim/v2/Users?x=1"
    assert req.headers["Host"] == "example.com:8080"
    req = parse_head(b"GET https://example.com HTTP/1.0\r\n\r\n")  # HTTP/1.0: Host optional
    assert req is not None and (req.target, req.headers["Host"]) == ("/", "example.com")


def test_a_second_host_is_refused_on_http_1_0_too() -> None:
    head = b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"
    with pytest.raises(HttpError) as info:
        parse_head(head)
    assert info.value.status == 400 and h11_read(head).error_status == 400
