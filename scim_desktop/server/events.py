"""What the server tells its observers: one record per request and resource changes.

Events are frozen dataclasses built on the server thread and handed to an :class:`EventSink`;
a sink must return quickly and never block the server (the GUI's sink only appends to a
locked deque). Secrets are redacted before a record is built, so every consumer — logs,
window, exports — sees the same safe data.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import orjson

REDACTED = "***"
#: Bodies longer than this are cut in request records (the full body was still served).
MAX_RECORDED_BODY = 256 * 1024

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_SECRET_KEYS = frozenset({"password", "client_secret", "access_token", "refresh_token"})
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ResourceChanged:
    kind: str  # created | updated | deleted | cleared (every resource removed; rtype/id "*")
    rtype: str  # User | Group
    id: str
    resource: dict[str, Any] | None  # the rendered resource after the change (None: deleted)


Event = RequestRecord | ResourceChanged


class EventSink(Protocol):
    def publish(self, event: Event) -> None:
        """Called on the server thread; must return quickly and never raise."""
        ...


class NullSink:
    wants_changes = False

    def publish(self, event: Event) -> None:
        pass


class MultiSink:
    def __init__(self, *sinks: EventSink) -> None:
        self.sinks = list(sinks)

    def publish(self, event: Event) -> None:
        for sink in self.sinks:
            sink.publish(event)


def next_record_id() -> int:
    return next(_ids)


def redact_headers(headers: Any) -> dict[str, str]:
    """Headers as a dict (repeated headers joined by ", "), credentials replaced by ***."""
    out: dict[str, str] = {}
    for name, value in headers.get_all() if hasattr(headers, "get_all") else headers.items():
        if name.lower() in _SECRET_HEADERS:
            scheme = value.split(" ", 1)[0] if " " in value else ""
            value = f"{scheme} {REDACTED}" if scheme else REDACTED
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _is_secret_key(key: str) -> bool:
    """``password`` and friends, also URN-prefixed (``urn:...:User:password``)."""
    lowered = key.lower()
    return lowered in _SECRET_KEYS or lowered.rsplit(":", 1)[-1] in _SECRET_KEYS


def _redact_json(value: Any) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        path = value.get("path")
        is_password_op = isinstance(path, str) and _is_secret_key(path.strip())
        for key, item in value.items():
            secret = _is_secret_key(key)
            if secret or (is_password_op and key.lower() == "value"):
                out[key] = REDACTED
            else:
                out[key] = _redact_json(item)
        return out
    if isinstance(value, list):
        return [_redact_json(v) for v in value]
    return value


_SECRET_HINT = re.compile(rb"password|secret|token", re.IGNORECASE)
_PASSWORD_RE = re.compile(rb'("(?:[^"]*:)?password"\s*:\s*)"(?:[^"\\]|\\.)*"', re.IGNORECASE)


def redact_body(body: bytes) -> str:
    """A body as text with passwords replaced; JSON is re-encoded, other text is kept."""
    if not body:
        return ""
    if not _SECRET_HINT.search(body):
        # Nothing that could be a secret (the common case, e.g. every list page): skip the
        # parse and walk, which would cost more than serving the request.
        return _cut(body.decode("utf-8", errors="replace"))
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        # Not JSON (or broken JSON): still never show something that looks like a password.
        text = _PASSWORD_RE.sub(rb'\1"***"', body)
        return _cut(text.decode("utf-8", errors="replace"))
    return _cut(orjson.dumps(_redact_json(parsed)).decode())


def _cut(text: str) -> str:
    if len(text) <= MAX_RECORDED_BODY:
        return text
    return text[:MAX_RECORDED_BODY] + f"… [{len(text) - MAX_RECORDED_BODY} more characters]"
