"""Exports of the request log: JSON Lines, HAR 1.2 and a curl command line.

Pure functions over :class:`RequestRecord` (no Qt), so they are easy to test and safe to run
on a worker thread. Records are redacted by the server before anyone sees them; nothing here
tries to undo that: a redacted ``Authorization`` becomes a ``$TOKEN`` placeholder in curl.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import orjson

from scim_desktop.server.events import (
    REDACTED,
    RequestRecord,
    dumps_json,
    record_json,
    record_line,
)

__all__ = ["har_bytes", "jsonl_object", "record_url", "to_curl", "to_har", "to_jsonl"]

HAR_CREATOR = "SCIM Desktop"
#: Tornado answers HTTP/1.1 (the records do not keep the request's version).
HTTP_VERSION = "HTTP/1.1"
#: Headers curl computes itself (or that make no sense to replay).
_CURL_SKIP = frozenset({"content-length", "host", "accept-encoding", "connection"})
#: Placeholders for credentials the server redacted, by auth scheme.
_PLACEHOLDERS = {"bearer": "$TOKEN", "basic": "$BASIC_CREDENTIALS"}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def jsonl_object(record: RequestRecord) -> dict[str, Any]:
    """The object ``--log jsonl`` writes for a record (the same function writes both)."""
    return record_json(record)


def to_jsonl(records: Iterable[RequestRecord]) -> str:
    """One JSON object per line, each ending with a newline, as the headless log writes."""
    return "".join(record_line(r) + "\n" for r in records)


def record_url(record: RequestRecord) -> str:
    """The absolute URL the client asked for: its Host header, https when
    ``X-Forwarded-Proto`` says so (a tunnel in front), otherwise http."""
    headers = record.request_headers
    host = (_header(headers, "Host") or "").strip() or "localhost"
    proto = (_header(headers, "X-Forwarded-Proto") or "").split(",")[0].strip().lower()
    scheme = "https" if proto == "https" else "http"
    url = f"{scheme}://{host}{record.path}"
    return f"{url}?{record.query}" if record.query else url


def _har_headers(headers: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in headers.items()]


def _mime(headers: Mapping[str, str]) -> str:
    return _header(headers, "Content-Type") or ""


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _har_entry(record: RequestRecord) -> dict[str, Any]:
    request: dict[str, Any] = {
        "method": record.method,
        "url": record_url(record),
        "httpVersion": HTTP_VERSION,
        "cookies": [],
        "headers": _har_headers(record.request_headers),
        "queryString": [
            {"name": name, "value": value}
            for name, value in parse_qsl(record.query, keep_blank_values=True)
        ],
        "headersSize": -1,
        "bodySize": _size(record.request_body),
    }
    if record.request_body:
        request["postData"] = {
            "mimeType": _mime(record.request_headers),
            "text": record.request_body,
        }
    try:
        status_text = HTTPStatus(record.status).phrase if record.status > 0 else ""
    except ValueError:
        status_text = ""
    body_size = _size(record.response_body)
    response: dict[str, Any] = {
        "status": record.status,
        "statusText": status_text,
        "httpVersion": HTTP_VERSION,
        "cookies": [],
        "headers": _har_headers(record.response_headers),
        "content": {
            "size": body_size,
            "mimeType": _mime(record.response_headers) or "application/octet-stream",
            "text": record.response_body,
        },
        "redirectURL": _header(record.response_headers, "Location") or "",
        "headersSize": -1,
        "bodySize": body_size if record.status > 0 else -1,
    }
    entry: dict[str, Any] = {
        "startedDateTime": record.time,
        "time": record.duration_ms,
        "request": request,
        "response": response,
        "cache": {},
        "timings": _har_timings(record),
        # HAR 1.2 allows custom fields that start with an underscore.
        "_oktaStep": record.okta_step,
        "_oktaLabel": record.okta_label,
        "_oktaExplanation": record.okta_explanation,
        "_fault": record.fault,
    }
    if record.client:
        entry["_client"] = record.client
    entry.update(_har_upstream(record))
    return entry


def _har_timings(record: RequestRecord) -> dict[str, Any]:
    """HAR 1.2 ``timings`` (their sum is ``time``). Proxied: ``wait`` is the time the
    upstream took to answer, and the rest, spent in the proxy itself (fault latency,
    reading, forwarding, writing), is ``blocked``, HAR's time "spent in a queue"."""
    upstream = record.upstream_ms
    if upstream is None:
        return {"send": 0, "wait": record.duration_ms, "receive": 0}
    wait = min(upstream, record.duration_ms)  # the sum must stay ``time`` (HAR 1.2)
    return {"blocked": record.duration_ms - wait, "send": 0, "wait": wait, "receive": 0}


def _har_upstream(record: RequestRecord) -> dict[str, Any]:
    """The custom fields of a proxied request (none for a mock's): the upstream's status,
    its time and the proxy's, its failure, and why Okta would reject its answer."""
    status = record.upstream_status
    error = record.upstream_error
    upstream = record.upstream_ms
    if status is None and error is None and upstream is None:
        return {}
    fields: dict[str, Any] = {"_upstreamStatus": status}
    if upstream is not None:
        fields["_upstreamTime"] = upstream
        fields["_proxyTime"] = max(record.duration_ms - upstream, 0.0)
    if error:
        fields["_upstreamError"] = error
    fields["_oktaProblems"] = list(record.okta_problems)
    return fields


def to_har(records: Iterable[RequestRecord], creator_version: str) -> dict[str, Any]:
    """A HAR 1.2 document (http://www.softwareishard.com/blog/har-12-spec/) of the records.

    Serialise it with :func:`har_bytes` (never refused by orjson)."""
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": HAR_CREATOR, "version": creator_version},
            "pages": [],
            "entries": [_har_entry(r) for r in records],
        }
    }


def har_bytes(records: Iterable[RequestRecord], creator_version: str) -> bytes:
    """The HAR document of the records as indented JSON bytes, as the export file holds it;
    what orjson cannot write (a lone surrogate, an integer beyond 64 bits) becomes text."""
    return dumps_json(to_har(records, creator_version), option=orjson.OPT_INDENT_2)


def _is_redacted(value: str) -> bool:
    return value == REDACTED or value.endswith(f" {REDACTED}")


def to_curl(record: RequestRecord) -> str:
    """A runnable curl command line for the record (one line, shell-quoted).

    A redacted ``Authorization: Bearer ***`` becomes ``-H "Authorization: Bearer $TOKEN"``
    (double quotes, so the shell fills in ``$TOKEN`` from the environment); the secret itself
    was never recorded."""
    parts = ["curl", "-X", shlex.quote(record.method.upper()), shlex.quote(record_url(record))]
    for name, value in record.request_headers.items():
        lower = name.lower()
        if lower in _CURL_SKIP:
            continue
        if _is_redacted(value):
            if lower != "authorization":
                continue  # a redacted cookie or proxy credential cannot be replayed
            scheme = value.split(" ", 1)[0] if " " in value else "Bearer"
            placeholder = _PLACEHOLDERS.get(scheme.lower(), "$TOKEN")
            parts += ["-H", f'"{name}: {scheme} {placeholder}"']
            continue
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    if record.request_body:
        parts += ["--data-raw", shlex.quote(record.request_body)]
    return " ".join(parts)
