"""What h11 (the HTTP/1.1 library httpx and uvicorn's h11 mode use) reads from bytes a client
sent, and hypothesis strategies that write such bytes: valid and malformed request heads,
framings and pipelines. The oracle for tests/server/test_http1_oracle.py.

Each generated request carries ``quirks``: the names of the deliberate oddities put into it
(obs-fold, a chunk size with leading whitespace, ...). They describe the input only; whether
a quirk makes a request invalid is for h11 and our parser to say. The test uses them to check
that every difference between the two is one of the documented ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11
from hypothesis import strategies as st


# --- what h11 reads -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Got:
    """One request as a parser delivered it, in comparable terms."""

    method: str
    target: str
    version: str
    #: Lower-cased names; repeated fields joined with "," in order.
    headers: dict[str, str]
    body: bytes


@dataclass
class Oracle:
    """What h11 made of a byte stream sent by a client that then ended its side."""

    requests: list[Got] = field(default_factory=list)
    #: Where each request starts in the stream (one more entry than ``requests``: where the
    #: next, refused or unfinished, one starts).
    offsets: list[int] = field(default_factory=lambda: [0])
    #: h11's status for the request after the last one read (None: no error).
    error_status: int | None = None
    error: str = ""
    #: The error came only once the client ended its side (an unfinished request).
    at_eof: bool = False
    #: h11 closes after the last request (Connection: close, or HTTP/1.0).
    closed: bool = False


def joined(fields: list[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw_name, raw_value in fields:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        out[name] = f"{out[name]},{value}" if name in out else value
    return out


def h11_read(data: bytes) -> Oracle:
    """Feed ``data`` and then the end of the stream to an h11 server connection, answering
    each request (so a pipeline goes on) the way a server would."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    oracle = Oracle()
    request: h11.Request | None = None
    body = bytearray()
    eof = False
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            oracle.error_status, oracle.error, oracle.at_eof = exc.error_status_hint, str(exc), eof
            return oracle
        if event is h11.NEED_DATA:
            if eof:  # h11 says ConnectionClosed or raises after the end; never twice
                raise AssertionError("h11 asked for data after the end of the stream")
            conn.receive_data(b"")
            eof = True
        elif isinstance(event, h11.Request):
            request, body = event, bytearray()
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None
            oracle.requests.append(
                Got(
                    request.method.decode("latin-1"),
                    request.target.decode("latin-1"),
                    "HTTP/" + request.http_version.decode("ascii"),
                    joined([(name, value) for name, value in request.headers.raw_items()]),
                    bytes(body),
                )
            )
            oracle.offsets.append(len(data) - len(conn.trailing_data[0]))
            if conn.their_state is h11.MUST_CLOSE:  # Connection: close, or HTTP/1.0
                oracle.closed = True
                return oracle
        elif event is h11.PAUSED:
            conn.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
            conn.send(h11.EndOfMessage())
            conn.start_next_cycle()
        elif isinstance(event, h11.ConnectionClosed):
            return oracle
        else:  # pragma: no cover - h11 has no other client events
            raise AssertionError(f"unexpected h11 event {event!r}")


def served_as(got: Got) -> Got:
    """What a server reading ``got`` as h11 read it hands its handler: an absolute-form target
    (RFC 9112 §3.2.2) as the path and query it names, its authority as Host."""
    target = got.target
    if target[:1] in ("/", "*") or "://" not in target:
        return got
    url = urlsplit(target)
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    if url.fragment:
        path += f"#{url.fragment}"
    headers = dict(got.headers)
    headers["host"] = url.netloc.rpartition("@")[2]
    return Got(got.method, path, got.version, headers, got.body)


# --- what clients send --------------------------------------------------------------------------
@dataclass(frozen=True)
class Sent:
    data: bytes
    quirks: frozenset[str]
    #: The client stops in the middle of this request (the end of a pipeline).
    cut: bool = False


def _often(
    draw: st.DrawFn, common: list[str], rare: list[str], odds: int = 4, tidy: bool = False
) -> str:
    """Mostly one of ``common``, one time in ``odds`` one of ``rare`` (never when ``tidy``)."""
    pool = rare if rare and not tidy and draw(st.integers(0, odds - 1)) == 0 else common
    return draw(st.sampled_from(pool))


_PATH_CHARS = "abcXYZ019/-._~!$&'()*+,;=:@%?"
#: Field value characters: visible ASCII, obs-text, and the odd ones (h11 allows some control
#: characters in values; RFC 9110 §5.5 does not).
_VALUE_ODD = ["\x01", "\x1f", "\x7f", "\x0b", "\x0c", "\x00", "\r", "\xa0", "\xe9", "\t", " "]
_CTL_H11_ALLOWS = set("\x01\x1f\x7f")
_CTL_ALL = set("\x00\x01\x0b\x0c\x1f\x7f\r")


@st.composite
def _target(draw: st.DrawFn, tidy: bool) -> tuple[str, set[str]]:
    quirks: set[str] = set()
    path = "/" + draw(st.text(_PATH_CHARS, max_size=12))
    if tidy:
        return path, quirks
    kind = draw(st.sampled_from(["origin"] * 6 + ["star", "absolute", "absolute", "other"]))
    if kind == "origin":
        target = path
    elif kind == "star":
        target = "*"
    elif kind == "absolute":
        scheme = draw(st.sampled_from(["http", "https", "HTTP", "ftp"]))
        userinfo = draw(st.sampled_from(["", "", "user@", "u:p@"]))
        host = draw(st.sampled_from(["example.com", "h:8080", "[::1]:80", "", ":80"]))
        rest = draw(st.sampled_from(["", path, "?q=1"]))
        target = f"{scheme}://{userinfo}{host}{rest}"
        if scheme == "ftp":
            quirks.add("target-form")
        elif host in ("", ":80"):
            quirks.add("url-empty-host")
    else:
        target = draw(st.sampled_from(["example.com:443", "x/y", "http:/x", "/a#f", "//a"]))
        if not target.startswith("/"):
            quirks.add("target-form")
    odd = draw(st.sampled_from([""] * 8 + ["\xe9", "\x01", "\x7f"]))
    if odd:
        target += odd
        if odd == "\xe9":
            quirks.add("target-obs-text")
    return target, quirks


@st.composite
def _field_value(draw: st.DrawFn, tidy: bool) -> str:
    parts = draw(
        st.lists(
            st.one_of(
                st.text('abcXYZ0123456789-_.,;="/()', min_size=1, max_size=6),
                st.sampled_from(["a b"] if tidy else _VALUE_ODD),
            ),
            max_size=4,
        )
    )
    return "".join(parts)


@st.composite
def head_lines(draw: st.DrawFn, framing: list[str], tidy: bool = False) -> tuple[str, set[str]]:
    """A request head (request line, header fields, the empty line), with the framing field
    lines given, and the quirks put into it. ``tidy``: none of the rare faults (so that the
    framing's own are not hidden behind a fault in the head)."""
    quirks: set[str] = set()

    def often(common: list[str], rare: list[str], odds: int = 4) -> str:
        return _often(draw, common, rare, odds, tidy)

    eol = draw(st.sampled_from(["\r\n"] * 5 + ["\n"]))

    def end() -> str:
        return eol if draw(st.integers(0, 7)) else ("\n" if eol == "\r\n" else "\r\n")

    method = often(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "get"], ["G(T", ""])
    target, target_quirks = draw(_target(tidy))
    quirks |= target_quirks
    version = often(
        ["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"],
        ["HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "HTTP/3", "http/1.1", "HTTP/1.10"],
    )
    if version.startswith("HTTP/") and version not in ("HTTP/1.1", "HTTP/1.0"):
        quirks.add("version-unsupported")
    sep = often([" "], ["  ", "\t"], odds=12)
    lines = [f"{method}{sep}{target} {version}"]
    hosts = 1 if tidy else draw(st.sampled_from([1, 1, 1, 1, 0, 2]))
    for _ in range(hosts):
        host = often(["example.com", "h:8080"], ["", "a,b", "x y"])
        if "," in host:
            quirks.add("host-comma")
        lines.append(f"{often(['Host'], ['host', 'HOST'])}:{_ows(draw)}{host}")
    if hosts == 2:
        quirks.add("host-twice")
    names = ["Accept", "X-A", "x-a", "User-Agent", "Connection", "Expect"]
    for _ in range(draw(st.integers(0, 3))):
        name = often(names, ["Bad Name", "A(b", "", "X-A "], odds=8)
        if name == "Connection":
            value = draw(st.sampled_from(["close", "keep-alive", "Keep-Alive", "upgrade"]))
        elif name == "Expect":
            value = "100-continue"
        else:
            value = draw(_field_value(tidy))
        stripped = value.strip(" \t")
        if set(stripped) & _CTL_H11_ALLOWS and not set(stripped) & (_CTL_ALL - _CTL_H11_ALLOWS):
            quirks.add("ctl-in-field")
        lines.append(f"{name}:{_ows(draw)}{value}{_ows(draw)}")
        # obs-fold: a continuation line (RFC 9112 §5.2)
        if not tidy and draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.sampled_from([" more", "\tmore", "  x y"])))
            quirks.add("obs-fold")
    lines.extend(framing)
    head_fields = lines[1:]
    order = draw(st.permutations(range(len(head_fields))))
    lines = [lines[0]] + [head_fields[i] for i in order]
    if any(line[:1] in (" ", "\t") for line in lines[1:2]):
        quirks.discard("obs-fold")  # a fold at the start of the fields: both refuse it
    leading = often([""], ["\r\n", "\n", "\r\n\r\n"], odds=8)
    if leading:
        quirks.add("leading-empty-line")
    text = leading + "".join(line + end() for line in lines) + end()
    return text, quirks


def _ows(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(["", " ", " ", "\t", "  "]))


_BODY_BYTES = [b"q", b"w", b"x", b"y", b"z", b";", b":", b"\r\n", b"\n"]


@st.composite
def framed_request(draw: st.DrawFn, tidy: bool = False) -> Sent:
    """A whole request: head, framing (none, Content-Length, chunked, both, other codings) and
    body (never hex digits, so a chunk's data is not mistaken for a size line when a
    difference is explained). ``tidy``: a valid request (odd but allowed spellings only)."""

    def often(common: list[str], rare: list[str], odds: int = 4) -> str:
        return _often(draw, common, rare, odds, tidy)

    body = b"".join(draw(st.lists(st.sampled_from(_BODY_BYTES), max_size=30)))
    body += b"w" * draw(st.sampled_from([0, 0, 0, 11, 300, 5000]))  # hex letters in sizes
    kind = draw(
        st.sampled_from(
            ["none", "length", "length", "chunked", "chunked", "odd"][: 5 if tidy else 6]
        )
    )
    quirks: set[str] = set()
    framing: list[str] = []
    payload = b""
    if kind == "length":
        n = len(body)
        value = often(
            [str(n)],
            [f"0{n}", f"{n}, {n}", f"{n},{n + 1}", f"+{n}", "", "9" * 18, "9" * 19, f"{n},\xa0{n}"],
        )
        if len(value) > 18 and value.isdigit():
            quirks.add("length-huge")
        elif value == "9" * 18:
            quirks.add("body-over-limit")
        elif "\xa0" in value:
            quirks.add("length-nbsp")
        framing.append(f"Content-Length: {value}")
        payload = body
    elif kind == "chunked":
        framing.append(f"Transfer-Encoding: {often(['chunked'], ['Chunked', ' chunked'])}")
        payload, chunk_quirks = draw(_chunked(body, tidy))
        quirks |= chunk_quirks
    elif kind == "odd":
        odd = draw(st.sampled_from(["both", "gzip", "twice", "gzip-chunked"]))
        chunked, chunk_quirks = draw(_chunked(body, tidy))
        if odd == "both":
            framing += ["Transfer-Encoding: chunked", f"Content-Length: {len(chunked)}"]
            quirks |= chunk_quirks | {"te-and-length"}
        elif odd == "gzip":
            framing.append("Transfer-Encoding: gzip")
        elif odd == "twice":
            framing += ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"]
        else:
            framing.append("Transfer-Encoding: gzip, chunked")
        payload = chunked
    # Mostly a head without faults of its own, so that the framing's are seen.
    head, head_quirks = draw(head_lines(framing, tidy=tidy or draw(st.integers(0, 3)) > 0))
    quirks |= head_quirks
    if kind in ("chunked", "odd") and "HTTP/1.0" in head.lstrip("\r\n").split("\n", 1)[0]:
        quirks.add("te-http10")
    return Sent(head.encode("latin-1") + payload, frozenset(quirks))


@st.composite
def _chunked(draw: st.DrawFn, body: bytes, tidy: bool) -> tuple[bytes, set[str]]:
    quirks: set[str] = set()

    def often(common: list[str], rare: list[str], odds: int = 4) -> str:
        return _often(draw, common, rare, odds, tidy)

    out = bytearray()
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=3)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True) if b > a]
    for piece in [*pieces, b""]:
        if not piece and not tidy and draw(st.integers(0, 9)) == 0:
            # A chunk beyond the body limit instead of the last chunk (the client stops there).
            return bytes(out) + b"f" * 16 + b"\r\n", quirks | {"body-over-limit"}
        size = f"{len(piece):x}"
        size = often([size, size.upper(), "0" + size], ["0" * 17 + size, " " + size, "g", ""], 10)
        if size.startswith("0" * 17):
            quirks.add("chunk-size-long")
        elif size.startswith(" "):
            quirks.add("chunk-size-leading-ws")
        ext = often([""], [";a=b", ";a", ';a="q r"', " ;a", "\t;a=b", ";a\x01", " "])
        if ext[:1] in (" ", "\t") and ext.strip():
            quirks.add("chunk-ext-bws")
        if "\x01" in ext:
            quirks.add("ctl-in-chunk-line")
        out += (size + ext).encode("latin-1") + often(["\r\n"], ["\n"], 12).encode()
        if piece:
            out += piece + often(["\r\n"], ["\n", "xx"], 12).encode()
    for _ in range(draw(st.integers(0, 2))):
        line = often(["X-T: 1", "X-Sum:a"], ["no colon", " folded", "X-T: \x01"])
        if line in ("no colon", " folded"):
            quirks.add("trailer-malformed")
        if "\x01" in line:
            quirks.add("ctl-in-chunk-line")
        end = often(["\r\n"], ["\n"], 8)
        if end == "\n":
            quirks.add("bare-lf-in-trailers")
        out += line.encode("latin-1") + end.encode()
    end = often(["\r\n"], ["\n"], 8)
    if end == "\n":
        quirks.add("bare-lf-in-trailers")
    out += end.encode()
    return bytes(out), quirks


@st.composite
def pipeline(draw: st.DrawFn) -> list[Sent]:
    """One to four requests sent back to back, all valid or one of them possibly not (so that
    the boundaries after odd but valid framings are seen); sometimes the client stops mid-way
    through the last one (at a random byte)."""
    count = draw(st.integers(1, 4))
    odd = draw(st.sampled_from([None, *range(count)]))
    sent = [draw(framed_request(tidy=i != odd)) for i in range(count)]
    if draw(st.integers(0, 5)) == 0:
        last = sent[-1]
        at = draw(st.integers(0, max(0, len(last.data) - 1)))
        sent[-1] = Sent(last.data[:at], last.quirks, cut=True)
    return sent
