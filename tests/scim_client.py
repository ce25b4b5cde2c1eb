"""A small HTTP client for tests that talks to a real server over a real socket.

It sends exactly what Okta's SCIM client sends (headers from OKTA.md) unless told otherwise.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

OKTA_HEADERS = {
    "User-Agent": "Okta SCIM Client 1.0.0",
    "Accept": "application/scim+json",
    "Accept-Charset": "utf-8",
    "Accept-Encoding": "gzip,deflate",
}
SCIM_JSON = "application/scim+json; charset=utf-8"


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw) if self.raw else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


class ScimClient:
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        basic: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.base_path = parts.path.rstrip("/")
        self.timeout = timeout
        self.headers = dict(OKTA_HEADERS)
        if token is not None:
            self.headers["Authorization"] = f"Bearer {token}"
        if basic is not None:
            creds = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
            self.headers["Authorization"] = f"Basic {creds}"
        self.headers.update(headers or {})
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        content_type: str = SCIM_JSON,
    ) -> Response:
        all_headers = dict(self.headers)
        data: bytes | None = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            all_headers["Content-Type"] = content_type
        all_headers.update(headers or {})
        all_headers = {k: v for k, v in all_headers.items() if v is not None}
        url = path if path.startswith("/") and not self.base_path else self.base_path + path
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, url, body=data, headers=all_headers)
                resp = conn.getresponse()
                payload = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()  # the server closed a kept-alive connection: retry once
                if attempt == 2:
                    raise
        if resp.getheader("Content-Encoding") == "gzip":
            payload = gzip.decompress(payload)
        if resp.getheader("Connection", "").lower() == "close":
            self.close()
        return Response(resp.status, resp.headers, payload)

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Response:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Response:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Response:
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Response:
        return self.request("DELETE", path, **kw)


def filter_query(text: str) -> str:
    """``filter=<text>`` percent-encoded the way Okta sends it (spaces as %20)."""
    return "filter=" + quote(text, safe="")
