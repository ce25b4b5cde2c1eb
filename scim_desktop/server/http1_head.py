"""HTTP/1.1 heads for :mod:`scim_desktop.server.http1`: the request head read (RFC 9112 §2-5)
and the response head written, as functions of text and bytes (no socket, no IOLoop).

:func:`parse_head` checks the request line and header fields and returns a :class:`Request`
(or raises :class:`HttpError`: 400, 505): a method token, a target without control
characters (an absolute-form one becomes a path, its authority the Host), HTTP/1.0 or 1.1,
well-formed fields (no obs-fold, no bare CR, no control character), header names normalized
as Tornado does (``content-type`` -> ``Content-Type``), repeated fields joined with ",",
exactly one Host for HTTP/1.1. :func:`encode_head` writes a response's status line and
fields (:data:`Fields`: a list of values is written as repeated lines; a line break in a
value is refused); :func:`http_date` is the ``Date`` value.
:class:`Refusal` is what a refused request was answered. ``http1`` re-exports these names.
"""

from __future__ import annotations

import re
import time
from typing import Any, NamedTuple

from tornado import httputil

#: HTTP/1.0 and HTTP/1.1 only (RFC 9112 §2.3); any other version is a 505 (RFC 9110 §15.6.6).
#: That includes HTTP/1.2 and the like, which §2.3 would let a server read as 1.1 (a SHOULD):
#: no client sends one, and refusing keeps each version's rules (keep-alive, Host) exact.
_VERSION_RE = re.compile(r"HTTP/1\.[01]")
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Request targets: no control characters (RFC 9112 §3.2; spaces already split the line).
#: Bytes beyond ASCII are kept as Tornado keeps them (Latin-1 characters).
_TARGET_RE = re.compile(r"[^\x00-\x20\x7f]+")
_AUTHORITY_RE = re.compile(r"([^/?#]*)(.*)", re.DOTALL)
#: One header field line (RFC 9110 §5.1, RFC 9112 §5): a token name, a colon, optional
#: SP/HTAB, the value (trailing SP/HTAB stripped after). The block of fields ends with the
#: empty line. Possessive quantifiers only: no backtracking, so a hostile 64 KB head costs
#: linear time.
#: Anchored at line starts, so every match is one whole line: as many matches as lines means
#: every line is a well-formed field.
_FIELD_RE = re.compile(r"^([!#$%&'*+\-.^_`|~0-9A-Za-z]++):[ \t]*+([^\r\n]*+)\r?\n", re.M)
#: Control characters other than HTAB, CR and LF (a CR must start a CRLF: checked apart).
_CTL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_STATUS_LINES: dict[int, bytes] = {}
#: Normalized header names by the spelling a client used (a few dozen in practice).
_NAMES: dict[str, str] = {}


def normalize_name(name: str) -> str:
    """``content-type`` -> ``Content-Type``, as Tornado's HTTPHeaders spells names."""
    normal = _NAMES.get(name)
    if normal is None:
        normal = "-".join(w.capitalize() for w in name.split("-"))
        if len(_NAMES) < 4096:  # clients that invent names must not grow it without bound
            _NAMES[name] = normal
    return normal


class _Date:
    """The ``Date`` header value (RFC 9110 §6.6.1), formatted once a second."""

    second = -1
    value = ""


def http_date() -> str:
    now = time.time()
    second = int(now)
    if second != _Date.second:
        _Date.value = httputil.format_timestamp(now)
        _Date.second = second
    return _Date.value


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        reason = httputil.responses.get(status, "Unknown")
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} {reason}\r\n".encode()
    return line


#: Response header fields by name: a value, or a list of values for a field repeated on its
#: own lines (``Set-Cookie``, which cannot be joined with commas: RFC 6265 §3).
Fields = dict[str, str | list[str]]


def encode_head(status: int, headers: Fields) -> bytes:
    """The status line and header fields of a response, ending with the empty line (a list
    of values: one field line each, in order)."""
    lines = [f"{name}: {value}\r\n" for name, value in headers.items() if type(value) is str]
    if len(lines) != len(headers):  # rare: some field has several lines (or is not text)
        lines = [
            f"{name}: {item}\r\n"
            for name, value in headers.items()
            for item in (value if isinstance(value, list) else (value,))
        ]
    text = "".join(lines)
    # A CR or LF inside a value would split the response (header injection).
    if text.count("\n") != len(lines) or text.count("\r") != len(lines):
        raise ValueError(f"A response header holds a line break: {headers!r}")
    try:
        data = text.encode("latin-1")
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    return status_line(status) + data + b"\r\n"


class Refusal(NamedTuple):
    """A request answered without reaching the handler, and the answer it got."""

    #: Its first line as received (possibly cut, or not a request line at all).
    request_line: str
    status: int
    headers: dict[str, str]
    body: bytes


class HttpError(Exception):
    """A request that cannot be read as HTTP/1.1: answered with ``status`` and closed."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Request:
    """One request as read off the connection."""

    __slots__ = (
        "admission",
        "body",
        "body_limit",
        "declared_length",
        "head",
        "headers",
        "keep_alive",
        "method",
        "target",
        "version",
    )

    def __init__(
        self, method: str, target: str, version: str, headers: dict[str, str], head: str
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        #: The request line and header fields as received (decoded as Latin-1).
        self.head = head
        self.body = b""
        #: The body's length when it was too long to read (the body is then empty).
        self.declared_length = 0
        #: What the handler decided on the head (Handler.admit), kept for when it answers.
        self.admission: Any = None
        #: Set by Handler.admit to read less than ``max_body_size`` of this request's body: a
        #: longer one is left unread like one over ``max_body_size`` (endpoints anyone may
        #: call, such as OAuth's token endpoint, need only small bodies; without it each
        #: unauthenticated connection could make the server buffer ``--max-body`` bytes).
        self.body_limit: int | None = None
        connection = headers.get("Connection")
        # RFC 9110 §7.6.1: a comma-separated list of case-insensitive tokens ("x-close" is
        # not "close").
        options = (
            {token.strip(" \t").lower() for token in connection.split(",")} if connection else ()
        )
        if version == "HTTP/1.1":
            self.keep_alive = "close" not in options
        else:
            self.keep_alive = "keep-alive" in options

    def tornado_headers(self) -> httputil.HTTPHeaders:
        """The header fields as Tornado's HTTPHeaders (for a tornado.web.Application)."""
        _, _, fields = self.head.lstrip("\r\n").partition("\n")
        return httputil.HTTPHeaders.parse(fields)


def parse_head(data: bytes) -> Request | None:
    """The request line and header fields (None for a head of empty lines only)."""
    text = data.decode("latin-1")
    if _CTL_RE.search(text) or text.count("\r") != text.count("\r\n"):
        # RFC 9110 §5.5: never kept, never passed on (a bare CR included)
        raise HttpError(400, "The request head holds a control character")
    # RFC 9112 §2.2: empty lines before the request line are ignored.
    head = text.lstrip("\r\n") if text[0] in "\r\n" else text
    if not head:
        return None
    end = head.find("\n")
    line = head[:end]
    parts = (line[:-1] if line.endswith("\r") else line).split(" ")
    if len(parts) != 3:
        raise HttpError(400, "The request line is not 'METHOD target HTTP/1.1'")
    method, target, version = parts
    if not _TOKEN_RE.fullmatch(method):
        raise HttpError(400, f"The request method {method[:40]!r} is not a token")
    if not _TARGET_RE.fullmatch(target):
        raise HttpError(400, "The request target is empty or holds characters that are not allowed")
    if not _VERSION_RE.fullmatch(version):
        raise HttpError(
            505 if version.startswith("HTTP/") else 400,
            f"{version[:20]!r} is not supported: send HTTP/1.1 (or HTTP/1.0)",
        )
    block = head[end + 1 :]
    fields = _FIELD_RE.findall(block)
    if len(fields) != block.count("\n") - 1:  # the last line is the empty one
        _refuse_fields(block)  # raises, saying which line is wrong
    headers: dict[str, str] = {}
    names = _NAMES
    for name, value in fields:
        name = names.get(name) or normalize_name(name)
        if value and value[-1] in " \t":
            value = value.rstrip(" \t")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    # RFC 9112 §3.2: a 400 for an HTTP/1.1 request without Host, and for any request with more
    # than one (repeated fields were joined with ","; no host name holds a comma). Checked
    # before an absolute-form target's authority replaces Host: the client must send both.
    host = headers.get("Host")
    if host is None:
        if version == "HTTP/1.1":
            raise HttpError(400, "An HTTP/1.1 request needs exactly one Host header field")
    elif "," in host:
        raise HttpError(400, "A request may have only one Host header field")
    if version != "HTTP/1.1" and "Transfer-Encoding" in headers:
        raise HttpError(400, "Transfer-Encoding is not allowed in an HTTP/1.0 request")  # §6.1
    if target[0] != "/" and target != "*":
        target = _origin_form(target, headers)
    return Request(method, target, version, headers, text)


def _refuse_fields(block: str) -> None:
    """Raise the HttpError that says what is wrong in header fields _FIELD_RE refused."""
    for line in block.split("\n"):
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            continue
        if line[0] in " \t":  # RFC 9112 §5.2: obsolete line folding is refused
            raise HttpError(400, "A header field is folded over lines (obs-fold)")
        name, colon, _ = line.partition(":")
        if not colon:  # not quoted: the line may be a credential
            raise HttpError(400, "A header field line has no ':'")
        if not _TOKEN_RE.fullmatch(name):
            raise HttpError(400, f"Malformed header field name {name[:40]!r}")
    raise HttpError(400, "Malformed header fields")


def _origin_form(target: str, headers: dict[str, str]) -> str:
    """An absolute-form target (``http://host/path``, as sent through a proxy) as the path
    it names; its authority replaces Host (RFC 9112 §3.2.2, §7.2)."""
    scheme, separator, rest = target.partition("://")
    if not separator or scheme.lower() not in ("http", "https"):
        raise HttpError(400, "The request target is neither a path nor an http(s) URL")
    match = _AUTHORITY_RE.match(rest)
    assert match is not None  # the pattern matches any text
    authority, remainder = match.group(1).rpartition("@")[2], match.group(2)
    if not authority or authority[0] == ":":  # RFC 9110 §4.2.1: MUST reject an empty host
        raise HttpError(400, "The request target's URL has no host")
    headers["Host"] = authority
    return remainder if remainder.startswith("/") else "/" + remainder
