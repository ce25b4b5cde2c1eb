"""Proxy mode (issue 14): SCIM Desktop between Okta and the developer's own SCIM server.

``/scim/v2/<rest>`` is forwarded to ``<upstream URL>/<rest>`` with the query, method, body and
end-to-end header fields unchanged; the upstream's answer comes back unchanged but for the
hop-by-hop fields and ``Location``, which is rewritten to the proxy's URL. Everything else in
the request path is the mock server's, in :mod:`scim_desktop.server.handlers`: admission on the
head (size, and in credential-swap mode our own authentication), the Okta label, fault rules
and the rate limiter (a rule that answers answers here and the upstream sees nothing; latency
delays the forwarded request), the request record and the sinks. This module is the route the
handler dispatches to (:meth:`Proxy.match`), the forwarding itself (:meth:`Proxy.forward`) and
what the record adds (upstream status and time, the cause of a failure, and where the answer
differs from what Okta expects).

Security rules:

- Never an open relay: only paths under the base path are forwarded, always to the one
  configured upstream; absolute-form request targets (``GET http://other/...``, a forward
  proxy's request) are refused, and so are dot segments (``/scim/v2/../admin`` would leave the
  upstream's SCIM base once the upstream normalises it).
- ``X-Forwarded-For/-Proto/-Host`` are set by the proxy. A client can write any of them, so an
  incoming chain is kept (and appended to) only from a trusted hop: the tunnel tool, which
  connects over loopback while a tunnel is up. From anyone else the incoming ``X-Forwarded-*``,
  ``Forwarded`` and ``X-Real-IP`` are dropped and the chain starts at the peer's address.
- Credentials: in transparent mode the client's ``Authorization`` goes upstream and our own
  authentication is not applied (the upstream decides; the OAuth pages are not served). In
  swap mode the client authenticates with the proxy's credential, which is never sent
  upstream, and the upstream credential is added; it never reaches the client or a record
  (an upstream that echoes it gets it replaced by ``***``, also where an error quotes its
  garbage). In transparent mode a client credential the upstream quotes back is hidden from
  the record as the request's own ``Authorization`` is (a field here, the body and what is
  read from it in :mod:`~scim_desktop.server.recording`, as in mock mode).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import ipaddress
import logging
import time
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import orjson

from scim_desktop.config import HOP_OR_FRAMING, UpstreamConfig
from scim_desktop.core import errors
from scim_desktop.core.errors import BadGateway, GatewayTimeout
from scim_desktop.core.faults import METHODS, relative_path
from scim_desktop.server.endpoints import _NOT_FOUND, Route
from scim_desktop.server.events import REDACTED, UpstreamStatus
from scim_desktop.server.http1_head import Fields, http_date
from scim_desktop.server.upstream import UpstreamError, UpstreamPool, _tokens

try:  # the Okta expectations of each step (core/okta_expect.py), when present
    from scim_desktop.core import okta_expect
except ImportError:  # pragma: no cover - the module arrives with issue 14's window part
    okta_expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from scim_desktop.core.okta import Step
    from scim_desktop.server.handlers import Exchange
    from scim_desktop.server.http1_head import Request

log = logging.getLogger("scim_desktop.server")

#: Hop-by-hop fields (RFC 9110 §7.6.1), plus those the proxy itself sets for the next hop
#: (Host, the framing: the set --upstream-header may not name), the proxy credentials (RFC 9110
#: §11.7), and Expect (the body was already read, so no 100 Continue is needed).
_HOP_BY_HOP = HOP_OR_FRAMING | {"proxy-authenticate", "proxy-authorization", "expect"}
#: Fields a client could use to claim another origin; only a trusted hop's are kept.
_FORWARDING = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"})
_UNTRUSTED_ONLY = frozenset({"forwarded", "x-real-ip"})
#: Bodies the record decodes (Okta asks for gzip; the answer goes back as it came).
_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
#: Answers longer than this (decoded) are passed on but not parsed for the record, the label
#: or the Okta checks: JSON of tiny objects takes ~30 times its size once parsed (15 MB of
#: ``{},`` became 440 MB, twice over with the checks' own parse), so 32 such answers at once
#: took the proxy past 1 GB. Okta's own pages (at most 200 users) are far smaller.
MAX_JUDGED = 4 * 1024 * 1024


def _forward(ex: Exchange, rest: str) -> Any:
    return ex.ctx.proxy.forward(ex, rest)


#: Every method fault rules know goes upstream (CONNECT, TRACE and the like are 405 before
#: anything else, as on the mock server).
PROXY_ROUTE = Route(dict.fromkeys(METHODS, _forward))


class Proxy:
    """The forwarding half of a proxy-mode server; made by ServerThread, owned by its loop."""

    def __init__(self, config: UpstreamConfig, base_path: str, ctx: Any, max_body: int) -> None:
        self.config = config
        self.base_path = base_path.rstrip("/")
        self.ctx = ctx
        #: A malicious upstream must not exhaust memory: its answer is capped like a request
        #: body that is drained (16 MB, or four times --max-body).
        self.pool = UpstreamPool(config, max_response=max(16 * 1024 * 1024, max_body * 4))
        self.swap = config.has_credential
        self._secrets = tuple(s.encode() for s in config.secrets() if len(s) >= 4)
        self._credential: tuple[str, str] | None = None
        if config.token is not None:
            self._credential = ("Authorization", f"Bearer {config.token}")
        elif config.basic is not None:
            self._credential = ("Authorization", f"Basic {config.secrets()[-1]}")
        elif config.header is not None:
            self._credential = config.header
        #: Request fields dropped in swap mode: the client's credential stays here.
        self._swap_drop = frozenset(
            {"authorization", *([config.header[0].lower()] if config.header else [])}
        )
        #: None until the first forwarded request; then whether the upstream answers.
        self.up: bool | None = None
        origin = config.url.split("://", 1)
        authority = origin[1].split("/", 1)[0]
        self._origin = f"{origin[0]}://{authority}".lower()
        self._origins = {self._origin}
        default = ":443" if config.https else ":80"
        if authority.endswith(default):  # http://h:80/x and http://h/x are one place
            self._origins.add(self._origin[: -len(default)])
        else:
            self._origins.add(self._origin + default)

    # --- routing (ScimServer.decide) --------------------------------------------------------
    def match(self, path: str) -> tuple[Route, tuple[str, ...]]:
        """The proxy route for paths under the base path (its rest the argument), else the
        public 404: nothing else is ever forwarded."""
        base = self.base_path
        if path == base or (path.startswith(base) and path[len(base)] == "/"):
            return PROXY_ROUTE, (path[len(base) :],)
        return _NOT_FOUND, ()

    @staticmethod
    def refuse_head(request: Request) -> errors.ScimError | None:
        """An absolute-form target (``GET http://host/... HTTP/1.1``) is a forward proxy's
        request: refused, whatever host it names (RFC 9112 §3.2.2)."""
        line = request.head.lstrip("\r\n")
        target = line.split(" ", 2)[1] if line.count(" ") >= 2 else "/"
        if target.startswith("/"):
            return None
        return errors.BadRequest(
            "This proxy forwards only its own /scim/v2 paths to its configured server; "
            "absolute-form request targets are refused"
        )

    # --- forwarding -------------------------------------------------------------------------
    async def forward(self, ex: Exchange, rest: str) -> None:
        """The endpoint of every proxied request: send it upstream, answer with what came
        back (or a 502/504 SCIM Error saying why nothing usable did)."""
        _check_rest(rest)
        pool = self.pool
        target = (pool.path + rest) or "/"
        if target.startswith("//"):
            # A target starting "//" reads as an authority to a server that parses it as a
            # relative reference (RFC 3986 §4.2; Go's net/http, urlsplit): never sent.
            raise errors.BadRequest("The path must not start with '//' on the upstream")
        if ex.query:
            target += "?" + ex.query
        started = time.perf_counter()
        try:
            answer = await pool.request(ex.method, target, self._request_fields(ex), ex.body)
        except UpstreamError as exc:
            ex.upstream_ms = round((time.perf_counter() - started) * 1000, 3)
            ex.upstream_error = exc.text
            self._set_up(False, exc.text)
            error_type = GatewayTimeout if exc.status == 504 else BadGateway
            error = error_type(f"The proxy's upstream {self.config.url} {_explain(exc)}")
            ex.respond(error.status, error.to_body(), error.headers)
            return
        ex.upstream_ms = round(answer.elapsed * 1000, 3)
        ex.upstream_status = answer.status
        self._set_up(True, f"answered HTTP {answer.status}")
        headers, encoding = self._answer_fields(ex, answer.headers)
        body = answer.body
        recorded = _decoded(body, encoding, pool.max_response)
        if self._secrets and any(s in recorded for s in self._secrets):
            # The upstream echoed its own credential: never passed on (sent decoded, then).
            recorded = self._hide_secrets(recorded)
            body = recorded
            headers.pop("Content-Encoding", None)
        if ex.method != "HEAD" and answer.status not in (204, 304):
            # The body as read (de-chunked): its length frames it for the client.
            headers["Content-Length"] = str(len(body))
        # The record keeps one text per field (repeated ones joined, as for requests).
        recorded_fields = None
        if any(isinstance(value, list) for value in headers.values()):
            recorded_fields = {name: _joined(value) for name, value in headers.items()}
        if not self.swap and (own := credential_texts(ex.h.get("Authorization"))):
            # Transparent mode: the client's credential went upstream, and an upstream may
            # quote it (a 401 "invalid token ...", a debug header). The record shows the
            # request's Authorization as "Bearer ***", so it must not show the echo either;
            # the client gets its answer as it came. The body (and the label and checks read
            # from it) is scrubbed by recording.record, as in mock mode; the fields here.
            # (Field values are Latin-1 text of their bytes: a UTF-8 password is seen as such.)
            own = (*own, *(t.encode().decode("latin-1") for t in own if not t.isascii()))
            texts = recorded_fields or {n: _joined(v) for n, v in headers.items()}
            if any(text in value for value in texts.values() for text in own):
                recorded_fields = {name: _hide_text(value, own) for name, value in texts.items()}
        parsed = None
        if len(recorded) <= MAX_JUDGED and (
            recorded[:1] in (b"{", b"[") or recorded.lstrip()[:1] in (b"{", b"[")
        ):
            with contextlib.suppress(orjson.JSONDecodeError):
                parsed = orjson.loads(recorded)
        ex.answer_forwarded(answer.status, headers, body, recorded, parsed, recorded_fields)

    def _request_fields(self, ex: Exchange) -> list[tuple[str, str]]:
        """The request's end-to-end fields, the forwarding fields, and in swap mode the
        upstream credential instead of the client's."""
        h = ex.h
        named = _connection_options(h.get("Connection"))
        trusted = self._trusted_hop(ex)
        swap = self.swap
        out: list[tuple[str, str]] = []
        for name, value in h.items():
            low = name.lower()
            if (
                low in _HOP_BY_HOP
                or low in _FORWARDING
                or (named and low in named)
                or low.startswith("proxy-")
                or (swap and low in self._swap_drop)
                or (not trusted and low in _UNTRUSTED_ONLY)
            ):
                continue
            out.append((name, value))
        chain = h.get("X-Forwarded-For") if trusted else None
        proto = host = ""
        if trusted:
            proto = h.get("X-Forwarded-Proto", "").split(",")[0].strip()
            host = h.get("X-Forwarded-Host", "").split(",")[0].strip()
        out.append(("X-Forwarded-For", f"{chain}, {ex.remote_ip}" if chain else ex.remote_ip))
        out.append(("X-Forwarded-Proto", proto or ex.protocol))
        out.append(("X-Forwarded-Host", host or ex.host))
        if self._credential is not None:
            out.append(self._credential)
        return out

    def _trusted_hop(self, ex: Exchange) -> bool:
        """The tunnel tool (loopback, while a tunnel is up) is the only hop whose forwarding
        fields are believed."""
        if not self.ctx.public_url:
            return False
        try:
            return ipaddress.ip_address(ex.remote_ip).is_loopback
        except ValueError:
            return False

    def _answer_fields(self, ex: Exchange, fields: list[tuple[str, str]]) -> tuple[Fields, str]:
        """The upstream's fields for the client: hop-by-hop ones dropped, ``Location`` on the
        proxy, a ``Date`` when the upstream sent none (RFC 9110 §6.6.1), upstream secrets
        hidden, a repeated field kept on its own lines (a list: several ``Set-Cookie`` joined
        with commas would be one broken cookie, RFC 6265 §3). Also the body's content coding
        (for the record)."""
        named = set(_tokens(fields, "Connection"))
        out: Fields = {}
        for name, value in fields:
            low = name.lower()
            if low in _HOP_BY_HOP or low in named or low.startswith("proxy-"):
                if not (low == "content-length" and ex.method == "HEAD"):
                    continue  # (a HEAD answer's length describes the GET's body: kept)
            elif low == "location":
                value = self.location(value, ex.base_url)
            if self._secrets:
                value = self._hide_secrets(value.encode("latin-1", "replace")).decode("latin-1")
            prior = out.get(name)
            if prior is None:
                out[name] = value
            elif isinstance(prior, list):
                prior.append(value)
            else:
                out[name] = [prior, value]
        if "Date" not in out:
            out["Date"] = http_date()
        encoding = _joined(out.get("Content-Encoding", "")).strip().lower()
        return out, encoding

    def location(self, value: str, base_url: str) -> str:
        """A ``Location`` on the upstream's SCIM base, moved onto the proxy's (absolute URL or
        absolute path); anything else is left as the upstream wrote it."""
        path = self.pool.path
        head, sep, tail = value.partition("://")
        if sep:
            authority, slash, rest = tail.partition("/")
            if f"{head}://{authority}".lower() not in self._origins:
                return value
            rest = slash + rest
        elif value.startswith("/") and not value.startswith("//"):
            rest = value
        else:
            return value
        if path and not (rest == path or (rest.startswith(path) and rest[len(path)] in "/?#")):
            return value
        return base_url + rest[len(path) :]

    def _hide_secrets(self, data: bytes) -> bytes:
        return _hide(data, self._secrets)

    def _set_up(self, up: bool, detail: str) -> None:
        """Tell the sink when the upstream goes down or answers again (not per request)."""
        if self.up is up:
            return
        self.up = up
        if not up:
            log.warning("The upstream %s is down: %s", self.config.url, detail)
        try:
            self.ctx.sink.publish(UpstreamStatus(self.config.url, up, detail))
        except Exception:  # an observer's failure must never break serving
            log.exception("Could not publish the upstream's status")

    def close(self) -> None:
        self.pool.close()


def okta_problems(
    ex: Exchange, step: Step, status: int, body: Any, duration_ms: float
) -> tuple[str, ...]:
    """How a forwarded answer differs from what Okta expects for the request's step (one line
    each: what is wrong — what Okta does about it), from core/okta_expect.py. Not for an
    answer over MAX_JUDGED (never parsed: see there)."""
    problems: list[str] = []
    if len(ex._response_body) > MAX_JUDGED:
        return ()
    ctype = ex._response_headers.get("Content-Type", "").split(";")[0].strip().lower()
    text = ex._response_body.decode("utf-8", errors="replace")
    if body is None and text.strip() and ctype.endswith("json"):
        # Decided: forwarded as it came (the developer must see their server's real answer),
        # and flagged here rather than turned into a 502.
        problems.append(
            f"the body is not valid JSON though Content-Type says {ctype} — Okta cannot read "
            "the answer and fails the task"
        )
    if okta_expect is None:
        return tuple(problems)
    try:
        found = okta_expect.expect(
            step.id,
            ex.method,
            ex.query,
            ex.body.decode("utf-8", errors="replace"),
            status,
            text,
            retry_gives_up=step.retry_gives_up,
            path=relative_path(ex.path, ex.ctx.config.base_path),
            explanation=step.explanation,
            duration_s=duration_ms / 1000,
        )
        problems += [f"{p.what} — {p.okta_effect}" for p in found]
    except Exception:  # judging must never break serving
        log.exception("Could not compare the answer to %s %s with Okta's", ex.method, ex.path)
    return tuple(problems)


def _check_rest(rest: str) -> None:
    """No dot segments (RFC 3986 §3.3), plain or percent-encoded: the upstream would resolve
    them, perhaps to a path outside its SCIM base. Upstreams differ in what they decode before
    resolving, so the segments are looked at as the most lenient one would see them: decoded
    until nothing changes (``%252e`` behind a second decoding hop; three rounds at most),
    split at ``%2f`` and at backslashes (Windows servers, some routers), ``;params`` cut off
    (``..;/`` in Tomcat and Jetty), and cut at a NUL (C servers). No SCIM path needs any of
    these to spell a dot segment."""
    text = rest
    for _ in range(3):
        decoded = unquote(text, encoding="latin-1")
        if decoded == text:
            break
        text = decoded
    for segment in text.replace("\\", "/").split("/"):
        if segment.split(";", 1)[0].split("\0", 1)[0] in (".", ".."):
            raise errors.BadRequest(
                "Dot segments ('.', '..') are not forwarded: the path must stay under /scim/v2"
            )


def _hide(data: bytes, secrets: Iterable[bytes]) -> bytes:
    for secret in secrets:
        data = data.replace(secret, REDACTED.encode())
    return data


def _joined(value: str | list[str]) -> str:
    return value if isinstance(value, str) else ", ".join(value)


def _hide_text(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def credential_texts(authorization: str | None) -> tuple[str, ...]:
    """The secret parts of an ``Authorization`` value (RFC 9110 §11.4: scheme and
    credentials): the credentials, and for Basic (RFC 7617) the password too. Short ones
    (under 8 characters) are not hidden: no real credential is, and hiding them would blank
    common words out of the record."""
    if not authorization:
        return ()
    _, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    texts = [credentials]
    if authorization[:6].lower() == "basic ":
        with contextlib.suppress(ValueError):
            texts.append(base64.b64decode(credentials, validate=True).decode().partition(":")[2])
    return tuple(t for t in texts if len(t) >= 8)


def _connection_options(value: str | None) -> frozenset[str]:
    if not value:
        return frozenset()
    return frozenset(token.strip().lower() for token in value.split(",") if token.strip())


def _decoded(body: bytes, encoding: str, limit: int) -> bytes:
    """The body without its content coding, for the record and the Okta checks (at most
    ``limit`` bytes: a small gzip bomb must not become a big string)."""
    wbits = _DECODERS.get(encoding)
    if not body or wbits is None:
        return body
    try:
        decoder = zlib.decompressobj(wbits)
        return decoder.decompress(body, limit)
    except (zlib.error, gzip.BadGzipFile):
        return body


def _explain(exc: UpstreamError) -> str:
    text = exc.text
    if exc.status == 504:
        return f"did not answer in time ({text})"
    kind, _, detail = text.partition(": ")
    if kind == "unreachable":
        return f"could not be reached: {detail}"
    return f"answered something that is not a usable HTTP/1.1 answer: {detail}"
