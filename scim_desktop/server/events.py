"""What the server tells its observers: one record per request and resource changes.

Events are frozen dataclasses built on the server thread and handed to an :class:`EventSink`;
a sink must return quickly and never block the server (the GUI's sink only appends to a
locked deque). Secrets are redacted before a record is built, so every consumer — logs,
window, exports, copy as curl — sees the same safe data.

Redaction works on meaning, not on spelling: JSON bodies are parsed (so ``"p\\u0061ssword"``
is ``password``), attribute names are compared as the PATCH engine compares them
(``str.lower``, :func:`scim_desktop.core.paths.ci_key`), PATCH paths are parsed with the
engine's own parser (:func:`scim_desktop.core.filter.parse_path`), and a filter or a path
that compares a secret attribute loses its literals.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, unquote_plus

import orjson

from scim_desktop.core import filter as scim_filter

log = logging.getLogger(__name__)

REDACTED = "***"
#: Bodies longer than this are cut in request records (the full body was still served).
MAX_RECORDED_BODY = 256 * 1024

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
#: Headers whose value starts with an auth scheme that is kept ("Bearer ***", RFC 9110 §11).
_SCHEME_HEADERS = frozenset({"authorization", "proxy-authorization"})
#: Other header names that carry credentials by convention (X-Api-Key, X-Auth-Token, ...).
_SECRET_HEADER_WORDS = ("token", "secret", "password", "passwd", "api-key", "apikey", "api_key")
#: JSON keys (attribute names) whose values are secrets in SCIM bodies.
_SECRET_KEYS = frozenset({"password", "client_secret", "access_token", "refresh_token"})
#: Form fields and query parameters that carry OAuth secrets (RFC 6749 §4.1.2 ``code``,
#: §2.3.1 ``client_secret``, §6 ``refresh_token``; RFC 7636 ``code_verifier``; RFC 7009
#: ``token``), plus the consent form's CSRF token and request id.
_SECRET_PARAMS = frozenset(
    {
        "code",
        "client_secret",
        "code_verifier",
        "refresh_token",
        "access_token",
        "id_token",
        "token",
        "password",
        "assertion",
        "client_assertion",
        "csrf",
        "request",
    }
)
#: JSON keys redacted in the bodies of the OAuth endpoints: the same parameters sent as JSON
#: (RFC 6749 §4.1.3 asks for a form; some clients send JSON anyway), and the token response.
_OAUTH_KEYS = _SECRET_PARAMS | _SECRET_KEYS
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    id: int
    time: str  # RFC 3339 UTC, when the request arrived
    method: str
    path: str
    query: str
    status: int
    duration_ms: float
    client: str
    request_headers: dict[str, str]
    request_body: str
    response_headers: dict[str, str]
    response_body: str
    okta_step: str | None = None
    okta_label: str | None = None
    okta_explanation: str | None = None
    fault: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Proxy mode (issue 14); all None / empty for the mock server's own answers.
    #: What the upstream answered (None: the request was not forwarded, or got no answer).
    upstream_status: int | None = None
    #: Milliseconds spent waiting on the upstream (the proxy's own time is
    #: ``duration_ms - upstream_ms``).
    upstream_ms: float | None = None
    #: Why the upstream gave no usable answer: "unreachable: ...", "timed out after 60 s",
    #: "bad answer: ..." (the client got a 502 or 504 saying so).
    upstream_error: str | None = None
    #: How the upstream's answer differs from what Okta expects for the request's step (one
    #: line each: what is wrong, then what Okta does about it).
    okta_problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class UpstreamStatus:
    """Proxy mode: the upstream went down (``up`` False: unreachable, timing out or answering
    garbage) or answers again. Published on transitions only, not per request."""

    url: str
    up: bool
    detail: str


@dataclass(frozen=True, slots=True)
class ResourceChanged:
    kind: str  # created | updated | deleted | cleared (every resource removed; rtype/id "*")
    rtype: str  # User | Group | Catalog (id "*", resource: the catalog in its file format)
    id: str
    resource: dict[str, Any] | None  # the rendered resource after the change (None: deleted)


Event = RequestRecord | ResourceChanged | UpstreamStatus


class EventSink(Protocol):
    def publish(self, event: Event) -> None:
        """Called on the server thread; must return quickly and never raise."""
        ...


class NullSink:
    wants_changes = False
    wants_bodies = False

    def publish(self, event: Event) -> None:
        pass


class MultiSink:
    """Hands each event to every sink; one sink's failure reaches neither the server nor the
    sinks after it (every request must be recorded wherever it can be)."""

    def __init__(self, *sinks: EventSink) -> None:
        self.sinks = list(sinks)
        self._failed: set[int] = set()  # sinks whose failure was logged (once each)

    @property
    def wants_changes(self) -> bool:
        return any(getattr(s, "wants_changes", True) for s in self.sinks)

    @property
    def wants_bodies(self) -> bool:
        return any(getattr(s, "wants_bodies", True) for s in self.sinks)

    def publish(self, event: Event) -> None:
        for sink in self.sinks:
            try:
                sink.publish(event)
            except Exception:
                if id(sink) not in self._failed:
                    self._failed.add(id(sink))
                    log.exception("%s could not take an event", type(sink).__name__)


def record_json(record: RequestRecord) -> dict[str, Any]:
    """A request record as the JSON-lines log (and the window's export) writes it."""
    return {
        "time": record.time,
        "method": record.method,
        "path": record.path,
        "query": record.query,
        "status": record.status,
        "duration_ms": record.duration_ms,
        "client": record.client,
        "request": {"headers": record.request_headers, "body": record.request_body},
        "response": {"headers": record.response_headers, "body": record.response_body},
        "okta_step": record.okta_step,
        "okta_label": record.okta_label,
        "okta_explanation": record.okta_explanation,
        "fault": record.fault,
        **record.extra,
        **(_upstream_json(record) if record.upstream_status or record.upstream_error else {}),
    }


def _upstream_json(record: RequestRecord) -> dict[str, Any]:
    """The proxy's fields of a forwarded request (a mock server's lines stay as they were)."""
    upstream_ms = record.upstream_ms
    return {
        "upstream_status": record.upstream_status,
        "upstream_ms": upstream_ms,
        "proxy_ms": None
        if upstream_ms is None
        else round(max(record.duration_ms - upstream_ms, 0.0), 3),
        "upstream_error": record.upstream_error,
        "okta_problems": list(record.okta_problems),
    }


def upstream_status_json(event: UpstreamStatus) -> dict[str, Any]:
    """The JSON-lines log's line for an upstream going down or coming back."""
    return {"event": "upstream", "url": event.url, "up": event.up, "detail": event.detail}


_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what orjson writes as a JSON integer


def dumps_json(value: Any, option: int = 0) -> bytes:
    """``orjson.dumps(value)`` that never refuses a record: what orjson cannot write (an
    integer beyond 64 bits, such as a client's ``startIndex=10**24`` that reaches
    ``okta_page``; a lone surrogate; a non-string key; any other type) is written as text."""
    try:
        return orjson.dumps(value, option=option)
    except TypeError:  # orjson.JSONEncodeError
        return orjson.dumps(_json_safe(value), default=str, option=option | orjson.OPT_NON_STR_KEYS)


def _json_safe(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if _INT_MIN <= value <= _INT_MAX else str(value)
    if isinstance(value, str):
        return value.encode("utf-8", errors="replace").decode("utf-8")
    if isinstance(value, dict):
        return {
            _json_safe(k) if isinstance(k, str) else str(k): _json_safe(v) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value  # default=str writes it


def record_line(record: RequestRecord) -> str:
    """The record as one JSON-lines log line (without the newline); never raises."""
    return dumps_json(record_json(record)).decode()


def next_record_id() -> int:
    return next(_ids)


#: Header names already judged (a client cannot grow it: cleared when full).
_header_secret: dict[str, bool] = {}


def _is_secret_header(lowered: str) -> bool:
    secret = _header_secret.get(lowered)
    if secret is None:
        secret = lowered in _SECRET_HEADERS or any(w in lowered for w in _SECRET_HEADER_WORDS)
        if len(_header_secret) >= 512:
            _header_secret.clear()
        _header_secret[lowered] = secret
    return secret


def redact_headers(headers: Any) -> dict[str, str]:
    """Headers as a dict (repeated headers joined by ", "), credentials replaced by ***
    (``Authorization`` keeps its scheme: ``Bearer ***``)."""
    out: dict[str, str] = {}
    for name, value in headers.get_all() if hasattr(headers, "get_all") else headers.items():
        lowered = name.lower()
        if _is_secret_header(lowered):
            scheme = value.split(" ", 1)[0] if lowered in _SCHEME_HEADERS and " " in value else ""
            value = f"{scheme} {REDACTED}" if scheme else REDACTED
        elif lowered == "location" and ("?" in value or "#" in value):
            # The OAuth redirect back to the client carries the authorization code.
            value = redact_url(value)
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


#: Parameters named like a secret that only name a kind of one (RFC 7009 §2.1).
_NOT_SECRET_PARAMS = frozenset({"token_type_hint"})


def _is_secret_param(lowered: str) -> bool:
    """A parameter is secret by name: OAuth's (``_SECRET_PARAMS``) and, as for header
    fields, any name with ``token``, ``secret``, ``password``, ``api_key``... in it
    (``?api_key=`` or ``?x-auth-token=`` on a SCIM URL was logged in clear)."""
    if lowered in _SECRET_PARAMS:
        return True
    return lowered not in _NOT_SECRET_PARAMS and _is_secret_header(lowered)


def redact_params(text: str, found: list[str] | None = None) -> str:
    """An ``application/x-www-form-urlencoded`` string (a query string or a form body) with
    the values of secret parameters (OAuth's, ``access_token``, ``token``, ``password``)
    replaced by ***, and the literals of a ``filter`` that compares a password; everything
    else is kept byte for byte. What was hidden is added to ``found`` (see :func:`scrub`)."""
    if not text:
        return text
    parts = text.split("&")
    changed = False
    for i, part in enumerate(parts):
        name, sep, value = part.partition("=")
        if not sep:
            continue
        lowered = _form_text(name).strip().lower()
        if _is_secret_param(lowered):
            parts[i] = f"{name}={REDACTED}"
            changed = True
            if found is not None:
                found.append(unquote_plus(value))
        elif lowered == "filter" and value:
            if not _mentions(value, _SECRET_KEYS) and not _ENCODED_LETTER_RE.search(value):
                continue  # (decoding costs more than the rest: Okta sends a filter often)
            decoded = _form_text(value)
            hidden = redact_filter(decoded, found=found)
            if hidden is not decoded:
                parts[i] = f"{name}={quote(hidden, safe='')}"
                changed = True
    return "&".join(parts) if changed else text


#: A percent-encoded ASCII letter: how a secret's name could hide in a form-encoded value.
_ENCODED_LETTER_RE = re.compile(r"%(?:4[1-9a-f]|5[0-9a]|6[1-9a-f]|7[0-9a])", re.IGNORECASE)


def _form_text(text: str) -> str:
    """A form-encoded name or value, decoded (only when it has something to decode: a
    query is redacted on every request)."""
    return unquote_plus(text) if "%" in text or "+" in text else text


def redact_url(url: str) -> str:
    """A URL with secret query and fragment parameters redacted (``code`` in a redirect)."""
    base, hash_sign, fragment = url.partition("#")
    path, question, query = base.partition("?")
    out = path + (question + redact_params(query) if question else "")
    return out + (hash_sign + redact_params(fragment) if hash_sign else "")


def redact_form(body: bytes) -> str:
    """A form body with OAuth secrets redacted."""
    return _cut(redact_params(body.decode("utf-8", errors="replace")))


# --- JSON bodies, by meaning -------------------------------------------------------------------
def _names_secret(name: str, keys: frozenset[str]) -> bool:
    """Whether a JSON key names a secret. Keys are attribute paths ``[urn ":"] attr ["." sub]``
    (RFC 7644 §3.10; a path-less PATCH value is applied key by key with ``parse_attr_path``),
    and each name is compared as the engine compares names: ``str.lower`` (``ci_key``), after
    the surrounding spaces ``parse_attr_path`` strips."""
    lowered = name.lower()
    if lowered in keys:
        return True
    tail = lowered.rpartition(":")[2]  # after a schema URN
    return any(part.strip() in keys for part in tail.split("."))


def _mentions(text: str, keys: frozenset[str]) -> bool:
    lowered = text.lower()
    return any(key in lowered for key in keys)


def _secret_compares(node: Any, keys: frozenset[str]) -> int:
    """How many comparisons of a parsed filter compare a secret attribute; -1 when a value
    filter hangs off a secret attribute (``password[value eq "..."]``: hide every literal)."""
    count = 0
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, scim_filter.And | scim_filter.Or):
            stack += (item.left, item.right)
        elif isinstance(item, scim_filter.Not):
            stack.append(item.expr)
        else:
            path = item.path
            secret = any(n is not None and n.lower() in keys for n in (path.attr, path.sub))
            if isinstance(item, scim_filter.ValuePath):
                if secret:
                    return -1
                stack.append(item.filter)
            elif secret and isinstance(item, scim_filter.Compare):
                count += 1
    return count


#: A string or other literal after a comparison operator of a filter (RFC 7644 §3.4.2.2).
_LITERAL_RE = re.compile(
    r'"(?:[^"\\]|\\.)*"?|(?<=\s)(?i:eq|ne|co|sw|ew|gt|ge|lt|le)\s+(?!")[^\s()\[\]]+'
)
#: Filters longer than this are not parsed to decide: their literals are hidden outright.
_MAX_PARSED_FILTER = 4096


def _hide_literals(text: str, found: list[str] | None = None) -> str:
    def hide(m: re.Match[str]) -> str:
        literal = m.group(0)
        if literal.startswith('"'):
            if found is not None:
                found.append(literal[1:-1] if literal.endswith('"') else literal[1:])
            return f'"{REDACTED}"'
        op, value = literal.split(None, 1)
        if found is not None:
            found.append(value)
        return f"{op} {REDACTED}"

    return _LITERAL_RE.sub(hide, text)


#: ``attrPath op literal`` in a filter's text.
_COMPARISON_RE = re.compile(
    r"([A-Za-z$][\w$:.\-]*)(\s+(?i:eq|ne|co|sw|ew|gt|ge|lt|le)\s+)"
    r'("(?:[^"\\]|\\.)*"?|[^\s()\[\]"]+)'
)


def redact_filter(
    text: str, keys: frozenset[str] = _SECRET_KEYS, found: list[str] | None = None
) -> str:
    """A filter (RFC 7644 §3.4.2.2) with the literals compared to a secret attribute hidden
    (``userName eq "a" or password eq "***"``); ``text`` itself (the same object) when it
    compares none. A filter that cannot be parsed, or has a value filter on a secret, loses
    every literal."""
    if not _mentions(text, keys):
        return text
    count = -1
    if len(text) <= _MAX_PARSED_FILTER:
        with contextlib.suppress(Exception):  # refused by the server too, still recorded
            count = _secret_compares(scim_filter.parse(text), keys)
    if count == 0:
        return text
    if count > 0:
        hidden: list[str] = []

        def hide(m: re.Match[str]) -> str:
            if not _names_secret(m.group(1), keys):
                return m.group(0)
            hidden.append(m.group(3).strip('"'))
            return f'{m.group(1)}{m.group(2)}"{REDACTED}"'

        out = _COMPARISON_RE.sub(hide, text)
        if len(hidden) >= count:  # every secret comparison was found in the text
            if found is not None:
                found += hidden
            return out
    return _hide_literals(text, found)


def _path_secret(path: str, keys: frozenset[str]) -> tuple[bool, bool]:
    """For a PATCH ``path`` (RFC 7644 §3.5.2), parsed as the engine parses it: whether it
    targets a secret (its ``value`` is one), and whether its literals must be hidden (it
    targets or filters on a secret)."""
    if not _mentions(path, keys):
        return False, False
    try:
        parsed = scim_filter.parse_path(path)
    except Exception:  # refused by the engine; the body is still recorded: hide
        return True, True
    names = (parsed.attr.attr, parsed.attr.sub, parsed.sub)
    target = any(n is not None and n.lower() in keys for n in names)
    in_filter = parsed.filter is not None and _secret_compares(parsed.filter, keys) != 0
    return target, target or in_filter


_SAME: Any = object()  # "nothing to redact here": the walk copies only what it changes


_PLAIN, _SECRET, _PATH, _VALUE, _TEXT = range(5)


class _Keys:
    """The names that are secrets in one kind of body, and what each JSON key seen so far is
    (keys repeat from request to request, so each is judged once: a dict lookup after)."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        self.kinds: dict[str, int] = {}
        #: Keys known to be plain: an object whose keys all are is only walked into.
        self.plain: set[str] = set()

    def kind(self, key: str) -> int:
        kind = self.kinds.get(key)
        if kind is None:
            lowered = key.lower().strip()
            if _names_secret(key, self.names):
                kind = _SECRET
            elif lowered == "path":  # the engine takes the one spelled "path" in any case
                kind = _PATH
            elif lowered == "value":
                kind = _VALUE
            elif lowered in ("filter", "detail"):
                # A .search body's filter (RFC 7644 §3.4.3); a SCIM Error's detail quoting one.
                kind = _TEXT
            else:
                kind = _PLAIN
            if len(self.kinds) >= 4096:  # clients invent keys: bounded
                self.kinds.clear()
                self.plain.clear()
            self.kinds[key] = kind
            if kind == _PLAIN:
                self.plain.add(key)
        return kind


_SCIM_KEYS = _Keys(_SECRET_KEYS)
_OAUTH_BODY_KEYS = _Keys(_OAUTH_KEYS)


def _redact_value(value: Any, keys: _Keys, found: list[str] | None) -> Any:
    """``value`` with its secrets replaced, or ``_SAME`` when it holds none."""
    if isinstance(value, dict):
        return _redact_object(value, keys, found)
    if isinstance(value, list):
        out: list[Any] | None = None
        for i, item in enumerate(value):
            if not isinstance(item, dict | list):
                continue
            new = _redact_value(item, keys, found)
            if new is not _SAME:
                if out is None:
                    out = list(value)
                out[i] = new
        return _SAME if out is None else out
    return _SAME


def _redact_object(obj: dict[str, Any], keys: _Keys, found: list[str] | None) -> Any:
    out: dict[str, Any] | None = None
    if keys.plain.issuperset(obj):  # the common case (name, emails[...]): one C call
        for key, item in obj.items():
            if isinstance(item, dict | list):
                new = _redact_value(item, keys, found)
                if new is not _SAME:
                    if out is None:
                        out = dict(obj)
                    out[key] = new
        return _SAME if out is None else out
    known = keys.kinds.get
    kinds = [known(key) for key in obj]
    if None in kinds:
        kinds = [keys.kind(key) for key in obj]
    # A PATCH operation whose path names a secret: its value is the secret. Every key spelled
    # "path" in any case counts (the engine takes one of them: ci_get).
    hide_value = hide_path = False
    if _PATH in kinds:
        for key, item in obj.items():
            if isinstance(item, str) and keys.kind(key) == _PATH:
                target, literals = _path_secret(item, keys.names)
                hide_value, hide_path = hide_value or target, hide_path or literals
    for kind, (key, item) in zip(kinds, obj.items(), strict=True):
        if kind == _SECRET or (hide_value and kind == _VALUE):
            new: Any = REDACTED
            if found is not None:
                _collect(item, found)
        elif kind in (_PLAIN, _VALUE) or not isinstance(item, str):
            # (A path, filter or detail that is not text is walked into like anything else.)
            if not isinstance(item, dict | list):
                continue
            new = _redact_value(item, keys, found)
            if new is _SAME:
                continue
        elif kind == _PATH:
            if not hide_path:
                continue
            new = _hide_literals(item, found)
        else:
            new = redact_filter(item, keys.names, found)
            if new is item:
                continue
        if out is None:
            out = dict(obj)
        out[key] = new
    return _SAME if out is None else out


def _collect(value: Any, found: list[str]) -> None:
    """The strings (and numbers) of a redacted value, for :func:`scrub`."""
    if isinstance(value, str):
        found.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, found)
    elif isinstance(value, list):
        for item in value:
            _collect(item, found)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        found.append(str(value))


#: Broken JSON: a "key": value pair (the value maybe cut off at the end of the text).
#: A value is a string, an array of scalars (one without objects or arrays in it) or a
#: scalar; an object is left to the pairs inside it.
_PAIR_RE = re.compile(
    r'"((?:[^"\\]|\\.)*)"(\s*:\s*)'
    r'("(?:[^"\\]|\\.)*"?|\[(?:[^\]\[{}"]|"(?:[^"\\]|\\.)*")*\]?|[^\s,{}\[\]]+)'
)
_UNICODE_ESCAPE_RE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _unescape(text: str) -> str:
    return _UNICODE_ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), text)


def _redact_text(text: str, keys: _Keys, found: list[str] | None) -> str:
    """A body that is not JSON: a form where JSON was expected gets the form treatment;
    broken JSON loses the values of secret keys (escapes decoded) and, when it mentions a
    secret at all, every PATCH ``value``, ``path`` and ``filter``."""
    if text.lstrip()[:1] not in ("{", "[") and "=" in text:
        return redact_params(text, found)
    if not _mentions(_unescape(text), keys.names):
        return text

    def pair(m: re.Match[str]) -> str:
        # A secret, and every PATCH value, path, filter (or error detail) near one.
        if keys.kind(_unescape(m.group(1))) != _PLAIN:
            if found is not None:
                found.append(_unescape(m.group(3).strip('"')))
            return f'"{m.group(1)}"{m.group(2)}"{REDACTED}"'
        return m.group(0)

    return _PAIR_RE.sub(pair, text)


def _redact_json(body: bytes, keys: _Keys, found: list[str] | None) -> str:
    """Parse, redact by meaning, re-encode only when something was redacted. Never raises:
    a record must be built whatever the body."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _cut(_redact_text(body.decode("utf-8", errors="replace"), keys, found))
    try:
        redacted = _redact_value(parsed, keys, found)
        if redacted is _SAME:
            return _cut(body.decode("utf-8", errors="replace"))
        return _cut(dumps_json(redacted).decode())
    except RecursionError:  # nested deeper than the walk goes
        return _cut(_redact_text(body.decode("utf-8", errors="replace"), keys, found))


#: Bytes without any of these (after lower()) cannot name a SCIM secret...
_SECRET_HINTS = (b"password", b"secret", b"token")
_KELVIN = "\u212a".encode()


def redact_body(body: bytes, found: list[str] | None = None) -> str:
    """A SCIM body as text with secrets (passwords) replaced; JSON is parsed and redacted by
    meaning (and re-encoded only when something was redacted), other text is kept. The
    secrets hidden are added to ``found`` (see :func:`scrub`)."""
    if not body:
        return ""
    lowered = body.lower()  # one C pass; far faster than an IGNORECASE regex over 60 KB
    if (
        not any(hint in lowered for hint in _SECRET_HINTS)
        # ...unless a key may be spelled with escapes ("p\u0061ssword") or with the one
        # non-ASCII character str.lower() turns into a letter of a secret name (the Kelvin
        # sign, "to\u212aen"; the only other, U+0130, lowers to "i" plus a combining dot, so
        # it can never equal an ASCII name): those bodies are parsed too.
        # (A one-byte search is a memchr, ~30x faster than a longer needle: it goes first.)
        and (b"\\" not in lowered or b"\\u" not in lowered)
        and (body.isascii() or _KELVIN not in body)
    ):
        # Nothing that could be a secret (the common case, e.g. every list page): skip the
        # parse and walk, which would cost more than serving the request.
        return _cut(body.decode("utf-8", errors="replace"))
    return _redact_json(body, _SCIM_KEYS, found)


#: Secrets shorter than this are scrubbed only where quoted ("abc"), not as bare text.
_MIN_BARE_SECRET = 4


def scrub(text: str | None, found: list[str]) -> str | None:
    """``text`` (an Okta explanation, an error detail) without the secrets the same request's
    redaction found: such text may quote a PATCH path or filter the client sent."""
    if not text or not found:
        return text
    for secret in sorted({s for s in found if s and s != REDACTED}, key=len, reverse=True):
        if len(secret) >= _MIN_BARE_SECRET:
            text = text.replace(secret, REDACTED)
        else:
            text = text.replace(f'"{secret}"', f'"{REDACTED}"')
    return text


def redact_oauth_body(body: bytes) -> str:
    """A body of the OAuth endpoints: JSON loses every OAuth secret by key (``code``,
    ``client_secret``, ``refresh_token``, ``code_verifier``, tokens, ...), anything else is
    treated as a form (RFC 6749 §4.1.3), whatever its Content-Type said."""
    if not body:
        return ""
    if body.lstrip()[:1] in (b"{", b"["):
        return _redact_json(body, _OAUTH_BODY_KEYS, None)
    return redact_form(body)


_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}


def escape_controls(text: str) -> str:
    """``text`` with C0 and C1 control characters and DEL shown as ``\\xNN``: what reaches a
    terminal or a log line must not carry escape sequences from a client."""
    return text if text.isprintable() else text.translate(_CONTROLS)


def cut_body(text: str) -> str:
    """``text`` shortened to what a request record keeps."""
    return _cut(text)


def _cut(text: str) -> str:
    if len(text) <= MAX_RECORDED_BODY:
        return text
    return text[:MAX_RECORDED_BODY] + f"… [{len(text) - MAX_RECORDED_BODY} more characters]"
