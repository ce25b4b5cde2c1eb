"""SCIM endpoints on Tornado's HTTP layer: decode -> core -> encode, one error path.

Every response is ``application/scim+json; charset=utf-8``, errors included (RFC 7644 §3.12,
§8.1): a ScimError raised anywhere becomes its SCIM Error body here, an unexpected exception
becomes a 500 SCIM Error that is logged with its traceback, and the server keeps serving.

Why not ``tornado.web.RequestHandler``: profiling the server under Okta-like load (issue 6)
put about 60 % of each request's CPU in RequestHandler's per-request machinery (routing over a
rule list, handler construction, header objects, output transforms, the coroutine around every
method), more than the SCIM work itself. The SCIM endpoints are therefore served by
:class:`ScimServer`, which receives each request from the HTTP/1.1 connection in
:mod:`scim_desktop.server.http1` (keep-alive, ``Expect: 100-continue``, body limits, chunked
bodies; on Tornado's TCPServer and IOStream) and dispatches it with one regular expression.
What RequestHandler did for these endpoints is done here explicitly: ``Date``,
``Content-Length``, ``Vary: Accept-Encoding`` and gzip (RFC 9110 §12.5.3), HEAD answered
without a body, 405 with ``Allow``, percent-decoded ids. The OAuth pages (HTML and forms)
stay on a ``tornado.web.Application``, which this server hands those paths to.

The endpoints themselves and the route table are in :mod:`scim_desktop.server.endpoints`;
the Okta label and the request record each exchange leaves behind are made in
:mod:`scim_desktop.server.recording`; this module is the request machinery around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, cast

import orjson
import tornado.web

from scim_desktop.config import ServerConfig
from scim_desktop.core import errors
from scim_desktop.core.fault_engine import FaultEngine
from scim_desktop.core.faults import FaultRequest, relative_path
from scim_desktop.core.okta import OktaClassifier, OktaRequest, Step
from scim_desktop.core.projection import make_projection, project
from scim_desktop.core.resources import Change, Outcome, ScimService, utc_now_iso
from scim_desktop.core.schemas import RESOURCE_TYPES
from scim_desktop.server.auth import Authenticator
from scim_desktop.server.endpoints import (
    _KNOWN_METHODS,
    _NOT_FOUND,
    Finished,
    Route,
    _route_pattern,
    match_route,
    parse_query,
)
from scim_desktop.server.events import (
    EventSink,
    RequestRecord,
    cut_body,
    escape_controls,
    next_record_id,
    redact_params,
    redact_url,
)
from scim_desktop.server.http1 import (
    ApplicationBridge,
    Connection,
    Fields,
    Refusal,
    Request,
    http_date,
)
from scim_desktop.server.oauth_handlers import MAX_OAUTH_BODY
from scim_desktop.server.recording import classify, publish_changes, record

__all__ = [
    "GZIP_FAST_ABOVE",
    "GZIP_LEVEL",
    "GZIP_MIN_LENGTH",
    "SCIM_CONTENT_TYPE",
    "Admission",
    "Exchange",
    "ScimServer",
    "ServerContext",
    "accepts_gzip",
    "client_origin",
    "drain_cap",
    "publish_changes",  # from recording.py
]

log = logging.getLogger("scim_desktop.server")

SCIM_CONTENT_TYPE = "application/scim+json; charset=utf-8"
_JSON_TYPES = ("application/scim+json", "application/json")
#: What a Host / X-Forwarded-Host may be: a name or address with an optional port.
_HOST_RE = re.compile(r"[A-Za-z0-9.\-_]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")
#: Compress only bodies at least this long (the gzip header and trailer cost ~20 bytes).
GZIP_MIN_LENGTH = 1024
GZIP_LEVEL = 6
#: Bodies longer than this are compressed at level 1: gzip runs on the IOLoop, and a whole
#: 100,000-member group (16 MB) took 340 ms at level 6 against 125 ms at level 1 for 7 % more
#: bytes (a 60 KB list page is unaffected).
GZIP_FAST_ABOVE = 256 * 1024


class _HasHeaders(Protocol):
    @property
    def headers(self) -> Mapping[str, str]: ...

    protocol: str
    host: str


def _is_loopback(host: str) -> bool:
    """Whether a Host value (with or without port) names this machine's loopback."""
    if host.startswith("["):
        name = host[1:].split("]", 1)[0]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.lower()
    return name in ("localhost", "::1") or name.startswith("127.")


def client_origin(request: _HasHeaders, public_url: str | None) -> str:
    """``scheme://host`` as the client sees this server: from Host / X-Forwarded-* (a tunnel
    forwards the public host), and the tunnel's public URL while one is up when the request
    names only the loopback address (a tunnel that rewrites Host, or a local client)."""
    headers = request.headers
    proto = headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    if proto not in ("http", "https"):
        proto = request.protocol
    host = headers.get("X-Forwarded-Host", "").split(",")[0].strip() or request.host
    if not _HOST_RE.fullmatch(host):
        host = request.host if _HOST_RE.fullmatch(request.host) else "localhost"
    if public_url:
        public_host = public_url.split("://", 1)[-1]
        if _is_loopback(host) or host.lower() in (public_host, f"{public_host}:443"):
            return public_url
    return f"{proto}://{host}"


def drain_cap(limit: int) -> int:
    """The largest body read (and dropped) to answer a proper 413 to; beyond it the
    connection is closed."""
    return max(limit * 4, 16 * 1024 * 1024)


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding value accepts gzip (``gzip;q=0`` refuses it, RFC 9110
    §12.5.3)."""
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        return q > 0
    return False


@dataclass
class ServerContext:
    """Everything the endpoints need; built once per server."""

    config: ServerConfig
    service: ScimService
    store: Any  # scim_desktop.store.DurableStore (kept loose: server tests may pass others)
    auth: Authenticator
    sink: EventSink
    #: Fault rules, asked after authentication and before any SCIM code runs.
    faults: FaultEngine = field(default_factory=FaultEngine)
    #: Labels each request with the Okta lifecycle step it belongs to.
    okta: OktaClassifier = field(default_factory=OktaClassifier)
    stats: dict[str, int] = field(default_factory=lambda: {"requests": 0, "errors": 0, "active": 0})
    #: The OAuth server and its token file (``scim_desktop.server.oauth_handlers.OAuthRuntime``)
    #: in OAuth mode, else None.
    oauth: Any = None
    #: ``https://host`` of the tunnel while one is up: the URL clients are told about.
    public_url: str | None = None
    #: Proxy mode (``scim_desktop.server.proxy.Proxy``): SCIM paths are forwarded upstream.
    proxy: Any = None


# --- the HTTP side ----------------------------------------------------------------------------
class Admission(NamedTuple):
    """What :meth:`ScimServer.decide` made of a request's head."""

    route: Route
    args: tuple[str, ...]
    #: The error that answers the request (401, 413, or why the path is unreadable), or None.
    refusal: Exception | None
    #: The route lacks the (known) method: a 405 once authenticated.
    not_allowed: bool


def _too_large(size: int, limit: int) -> errors.ScimError:
    return errors.PayloadTooLarge(f"The request body is {size} bytes; the limit is {limit} bytes")


class ScimServer:
    """The :class:`~scim_desktop.server.http1.HttpServer` hands every request here; SCIM URLs
    are answered by an :class:`Exchange`, the OAuth endpoints (when on) by the ``fallback``
    Application."""

    def __init__(
        self,
        ctx: ServerContext,
        fallback: tornado.web.Application | None = None,
        fallback_paths: re.Pattern[str] | None = None,
    ) -> None:
        self.ctx = ctx
        self.fallback = fallback
        self.fallback_paths = fallback_paths
        self.routes = _route_pattern(ctx.config.base_path)
        self._origins: dict[tuple[str, ...], str] = {}
        #: Answers still being prepared (waiting for their fsync, or for an injected delay).
        self.tasks: set[asyncio.Future[None]] = set()
        #: The request each connection is answering, until it is answered (told when the
        #: client goes away first).
        self._current: dict[Connection, Exchange | ApplicationBridge] = {}

    def admit(self, conn: Connection, request: Request, length: int) -> bool:
        """Decide on the request's head whether its body is worth reading (issue 12): the
        route, the method, the declared length against ``--max-body`` and the credentials,
        before any body byte is read, so an unauthenticated 16 MB upload is never buffered.
        The decision is kept on the request (``request.admission``); the Exchange answers it
        without deciding again. OAuth endpoints check their own credentials, in the body."""
        path = request.target.partition("?")[0]
        if self.fallback_paths is not None and self.fallback_paths.fullmatch(path):
            # Anyone may call the OAuth endpoints: their bodies are small forms, so no more is
            # read (the handler answers a longer one 413, its body unread).
            request.body_limit = MAX_OAUTH_BODY
            return True
        try:
            admission = self.decide(request.method, path, request.headers, length)
        except Exception as exc:  # an undecodable path: the Exchange answers it
            admission = Admission(_NOT_FOUND, (), exc, False)
        proxy = self.ctx.proxy
        if proxy is not None and (refusal := proxy.refuse_head(request)) is not None:
            admission = Admission(_NOT_FOUND, (), refusal, False)  # never a forward proxy
        request.admission = admission
        return (
            admission.refusal is None
            and not admission.not_allowed
            and not (admission.route.public or request.method not in _KNOWN_METHODS)
        )

    def decide(self, method: str, path: str, headers: Mapping[str, str], length: int) -> Admission:
        """The route of a request and whether it is refused before its endpoint runs: 405
        for an unknown method (before authentication), 413 for a declared body over the
        limit, 401 without valid credentials, 405 for a method the route lacks (unless fault
        rules, which may answer first, are set)."""
        if self.ctx.proxy is not None:  # proxy mode: every path under the base is forwarded
            route, args = self.ctx.proxy.match(path)
        else:
            route, args = match_route(
                self.routes, path, self.ctx.service.catalog, self.ctx.config.base_path
            )
        if method not in _KNOWN_METHODS or route.public:
            return Admission(route, args, None, False)
        limit = self.ctx.config.max_body_bytes
        if length > limit:
            return Admission(route, args, _too_large(length, limit), False)
        failure = self.ctx.auth.verify(headers.get("Authorization"))
        if failure is not None:
            error = errors.Unauthorized(
                failure.detail, headers={"WWW-Authenticate": failure.challenge}
            )
            return Admission(route, args, error, False)
        not_allowed = method not in route.methods and not self.ctx.faults.rules
        return Admission(route, args, None, not_allowed)

    def handle(self, conn: Connection, request: Request) -> None:
        path = request.target.partition("?")[0]
        if self.fallback_paths is not None and self.fallback_paths.fullmatch(path):
            assert self.fallback is not None
            bridge = ApplicationBridge(conn)
            self._current[conn] = bridge  # until the connection closes (or the next request)
            bridge.serve(self.fallback, request)
            return
        exchange = Exchange(self, conn, request)
        self._current[conn] = exchange
        exchange.run()

    def answered(self, conn: Connection) -> None:
        self._current.pop(conn, None)

    def connection_closed(self, conn: Connection) -> None:
        current = self._current.pop(conn, None)
        if current is not None:
            current.connection_closed()

    def refused(self, conn: Connection, refusal: Refusal) -> None:
        """Record a request that was not valid HTTP/1.1 (the log and the window show it):
        its method and path when the line has them, else the line itself, with secret
        parameters redacted and control characters shown escaped."""
        line = escape_controls(refusal.request_line)
        parts = line.split(" ")
        looks_like_http = len(parts) == 3 and parts[2].startswith("HTTP/")
        method = parts[0] if looks_like_http and parts[0].isalpha() else ""
        target = parts[1] if method else ""
        path, _, query = target.partition("?")
        if not method:  # anything after a "?" in any piece may hold a credential
            path = cut_body(" ".join(redact_url(piece) for piece in line.split(" ")))
        ctx = self.ctx
        ctx.stats["requests"] += 1
        ctx.stats["errors"] += 1
        bodies = getattr(ctx.sink, "wants_bodies", True)
        record = RequestRecord(
            id=next_record_id(),
            time=utc_now_iso(),
            method=method[:16] or "?",
            path=path[:2048],
            query=redact_params(query[:2048]),
            status=refusal.status,
            duration_ms=0.0,
            client=conn.remote_ip,
            request_headers={},
            request_body="",
            response_headers=refusal.headers if bodies else {},
            response_body=refusal.body.decode() if bodies else "",
        )
        try:
            ctx.sink.publish(record)
        except Exception:  # an observer's failure must never break serving
            log.exception("Could not publish the record of a refused request")

    def base_url(self, request: Exchange) -> str:
        """The SCIM base URL as the client sees it (Host / X-Forwarded-*; the tunnel's public
        URL for loopback requests while a tunnel is up), remembered per distinct header set."""
        h = request.h
        key = (
            request.protocol,
            request.host,
            h.get("X-Forwarded-Proto", ""),
            h.get("X-Forwarded-Host", ""),
            self.ctx.public_url or "",
        )
        url = self._origins.get(key)
        if url is None:
            url = client_origin(request, self.ctx.public_url) + self.ctx.config.base_path
            if len(self._origins) > 256:  # clients that invent Host values must not grow it
                self._origins.clear()
            self._origins[key] = url
        return url


class Exchange:
    """One SCIM request and its answer: auth, body limit, faults, dispatch and the SCIM Error
    path; the Okta label and the request record are recording.py's (``classify``, ``record``),
    which reads the state kept here."""

    # Per-request state: class-level defaults, set on the instance only when they change
    # (a dozen assignments per request were measurable).
    method = ""
    path = ""
    query = ""
    protocol = "http"
    remote_ip = ""
    body = b""
    changes: list[Change] = []
    fault: str | None = None
    status = 0
    _args: dict[str, str] | None = None
    _json: Any = None
    _json_done = False
    _base_url: str | None = None
    _okta_request: OktaRequest | None = None
    _okta_step: Step | None = None
    _response_headers: dict[str, str] = {}
    _response_body = b""
    _response_obj: Any = None
    #: Proxy mode: what the upstream answered and how long it took, or why it did not; its
    #: answer's body parsed (for the Okta label; None: not JSON).
    upstream_status: int | None = None
    upstream_ms: float | None = None
    upstream_error: str | None = None
    _response_json: Any = None
    _closed = False
    _answered = False
    _active = True
    _declared_length = 0
    #: What ScimServer.admit decided on the head (None: decided here, from the whole request).
    _admission: Admission | None = None

    @property
    def host(self) -> str:
        return self.h.get("Host") or "127.0.0.1"

    def __init__(self, server: ScimServer, conn: Connection, request: Request) -> None:
        self.server = server
        self.ctx = server.ctx
        self.conn = conn
        self._started = time.perf_counter()
        self._arrived = utc_now_iso()
        self.method = request.method
        path, _, query = request.target.partition("?")
        self.path = path
        if query:
            self.query = query
        #: The header fields, keyed by Tornado's normalized names ("Content-Type").
        self.h = self.headers = request.headers
        self.protocol = conn.protocol
        self.remote_ip = conn.remote_ip
        self.body = request.body
        if request.declared_length:
            self._declared_length = request.declared_length
        if request.admission is not None:
            self._admission = request.admission
        self.ctx.stats["active"] = self.ctx.stats.get("active", 0) + 1

    def run(self) -> None:
        try:
            pending = self._dispatch()
        except Exception as exc:  # every failure becomes a SCIM answer
            self._fail(exc)
            return
        if pending is not None:
            tasks = self.server.tasks
            task = asyncio.ensure_future(self._complete(pending))
            tasks.add(task)  # a reference until it is done (asyncio keeps only weak ones)
            task.add_done_callback(tasks.discard)

    def connection_closed(self) -> None:
        """The client went away before the answer was written."""
        self._closed = True
        self._done()

    # --- request side ----------------------------------------------------------------------------
    def _dispatch(self) -> Awaitable[None] | None:
        admission = self._admission
        limit = self.ctx.config.max_body_bytes
        if admission is None:  # not decided on the head (a request handed over directly)
            size = self._declared_length or len(self.body)
            admission = self.server.decide(self.method, self.path, self.h, size)
        route, args, refusal, not_allowed = admission
        if self.method not in _KNOWN_METHODS:
            raise self._not_allowed(route)
        if route.public and refusal is None:
            return self._run(route, args)
        if refusal is None and self._declared_length > limit:
            # A chunked body found too long while reading it (its rest was not read).
            refusal = _too_large(self._declared_length, limit)
        if isinstance(refusal, errors.ScimError) and refusal.status == 401:
            classify(self)  # Okta's step for a failed authentication too
        if refusal is not None:
            raise refusal
        classify(self)
        if not_allowed:
            raise self._not_allowed(route)
        if self.ctx.faults.rules:
            return self._with_fault(route, args)
        return self._run(route, args)

    def _run(self, route: Route, args: tuple[str, ...]) -> Awaitable[None] | None:
        endpoint = route.methods.get(self.method)
        if endpoint is None:
            raise self._not_allowed(route)
        return endpoint(self, *args)

    def _not_allowed(self, route: Route) -> errors.ScimError:
        error = errors.MethodNotAllowed(f"{self.method} is not allowed on {self.path}")
        error.headers["Allow"] = route.allow
        return error

    async def _complete(self, pending: Awaitable[None]) -> None:
        try:
            await pending
        except asyncio.CancelledError:  # the server is stopping
            self._closed = True
            self._fail(Finished())
            raise
        except Exception as exc:  # every failure becomes a SCIM answer
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        """Answer ``exc`` as a SCIM Error (unexpected ones as a logged 500)."""
        if isinstance(exc, Finished):
            record(self)
            return
        if isinstance(exc, errors.ScimError):
            error = exc
        else:
            # The path only: a query string may carry a credential (?access_token=...).
            log.error("Unexpected error in %s %s", self.method, self.path, exc_info=exc)
            error = errors.InternalError(
                "Internal server error; the server log has the details. The server keeps running."
            )
        if self._answered:  # failed after answering (e.g. a broken observer): nothing to add
            return
        self.respond(error.status, error.to_body(), error.headers)

    @property
    def uri(self) -> str:
        return self.path + (f"?{self.query}" if self.query else "")

    def query_args(self) -> dict[str, str]:
        """The query parameters, the last value of each (decoded, control characters replaced,
        stripped, as Tornado's get_query_argument gives them)."""
        args = self._args
        if args is None:
            args = self._args = parse_query(self.query)
        return args

    def query_arg(self, name: str) -> str | None:
        return self.query_args().get(name)

    def _decoded_body(self) -> Any:
        """The body parsed as JSON once (None when it is empty or not JSON)."""
        if not self._json_done:
            self._json_done = True
            if self.body:
                with contextlib.suppress(orjson.JSONDecodeError):
                    self._json = orjson.loads(self.body)
        return self._json

    def json_body(self) -> Any:
        """The decoded request body: JSON in either SCIM's or plain JSON's media type."""
        ctype = self.h.get("Content-Type", "")
        media = ctype.split(";", 1)[0].strip().lower()
        if media and media not in _JSON_TYPES and not media.endswith("+json"):
            raise errors.UnsupportedMediaType(
                f"Content-Type {media!r} is not supported; send application/scim+json "
                "or application/json"
            )
        if not self.body.strip():
            raise errors.InvalidSyntax("The request body is empty; a JSON object was expected")
        body = self._decoded_body()
        if body is None:
            try:
                return orjson.loads(self.body)  # 'null' itself, or the error message
            except orjson.JSONDecodeError as exc:
                raise errors.InvalidSyntax(f"The request body is not valid JSON: {exc}") from None
        return body

    @property
    def base_url(self) -> str:
        """The SCIM base URL as the client sees it, worked out once per request."""
        url = self._base_url
        if url is None:
            url = self._base_url = self.server.base_url(self)
        return url

    # --- faults ----------------------------------------------------------------------------------
    async def _with_fault(self, route: Route, args: tuple[str, ...]) -> None:
        """Answer the request with an injected fault if a rule fires (DESIGN.md "Faults"):
        endpoints never know faults exist."""
        decision = self.ctx.faults.decide(
            FaultRequest(
                method=self.method,
                path=relative_path(self.path, self.ctx.config.base_path),
                step=self._okta_step.id if self._okta_step else None,
                client=self.remote_ip,
            )
        )
        if decision is not None:
            self.fault = decision.description
            if decision.latency_ms:
                await asyncio.sleep(decision.latency_ms / 1000)
                if self._closed:
                    raise Finished()  # the client gave up waiting (Okta: after 60 s)
            if decision.drop:
                # No response at all: the connection just closes.
                self.conn.close()
                raise Finished()
            if decision.empty:
                self._answer(decision.status or 201, None, {"Content-Type": SCIM_CONTENT_TYPE})
                return
            if decision.status is not None:
                self.respond(decision.status, decision.body, decision.headers)
                return
        pending = self._run(route, args)
        if pending is not None:
            await pending

    # --- response side ---------------------------------------------------------------------------
    def respond(
        self,
        status: int,
        body: dict[str, Any] | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer with ``body`` as SCIM JSON (no body: no Content-Type)."""
        out = dict(headers) if headers else {}
        if body is None:
            self._answer(status, None, out)
            return
        self._response_obj = body
        out["Content-Type"] = SCIM_CONTENT_TYPE
        self._answer(status, orjson.dumps(body), out)

    def when_durable(self, answer: Callable[[], None]) -> None:
        """Call ``answer`` once this request's writes are durable: at once when nothing is
        pending, else when the journal batch holding them is fsynced (group commit; a failed
        write is answered as an error). A callback on the batch's shared future, not a task
        per request."""
        store = self.ctx.store
        future = store.commit_future() if self.changes else None
        if future is None:
            store.maybe_fold()
            answer()
            return

        def durable(done: asyncio.Future[None]) -> None:
            store.maybe_fold()
            if done.cancelled():  # the server is stopping
                self._closed = True
                self._fail(Finished())
                return
            try:
                done.result()
                answer()
            except Exception as exc:  # the write failed, or answering did
                self._fail(exc)

        future.add_done_callback(durable)

    def respond_outcome(self, status: int, outcome: Outcome) -> None:
        """Make the outcome's writes durable, then answer with its resource, limited by
        ``attributes`` / ``excludedAttributes`` when given (RFC 7644 §3.9)."""
        location = None
        if outcome.resource is not None:
            location = outcome.resource["meta"]["location"]
            if self.query:
                rt = RESOURCE_TYPES[outcome.resource["meta"]["resourceType"]]
                projection = make_projection(
                    self.query_arg("attributes"), self.query_arg("excludedAttributes"), rt
                )
                outcome.resource = project(outcome.resource, projection, rt)
        self.changes = outcome.changes
        headers: dict[str, str] = {}
        if outcome.version:
            headers["ETag"] = outcome.version
        if status == 201 and location is not None:
            headers["Location"] = location
        resource = outcome.resource
        self.when_durable(lambda: self.respond(status, resource, headers))

    def _answer(self, status: int, data: bytes | None, headers: dict[str, str]) -> None:
        """Write the response (once) and publish the request record."""
        if self._answered:
            raise RuntimeError("The request was already answered")
        self._answered = True
        self.status = 0 if self._closed else status  # 0: the client did not get it
        headers["Date"] = http_date()
        headers["Vary"] = "Accept-Encoding"
        self._response_body = data or b""
        if status in (204, 304):
            # RFC 9110 §15.3.5 / §15.4.5: no content, so no representation headers.
            for name in ("Content-Type", "Content-Encoding", "Content-Language"):
                headers.pop(name, None)
            data = None
        elif data is not None:
            if len(data) >= GZIP_MIN_LENGTH and accepts_gzip(self.h.get("Accept-Encoding", "")):
                level = GZIP_LEVEL if len(data) <= GZIP_FAST_ABOVE else 1
                data = gzip.compress(data, level)
                headers["Content-Encoding"] = "gzip"
            headers["Content-Length"] = str(len(data))
        else:
            headers["Content-Length"] = "0"
        self._response_headers = headers
        if not self._closed:
            self.server.answered(self.conn)
            self.conn.send(status, headers, None if self.method == "HEAD" else data)
        record(self)

    def answer_forwarded(
        self,
        status: int,
        headers: Fields,
        data: bytes,
        recorded: bytes,
        parsed: Any,
        recorded_headers: dict[str, str] | None = None,
    ) -> None:
        """Proxy mode: write the upstream's answer as server/proxy.py prepared it (no gzip,
        ``Vary`` or length of ours) and record it (``recorded``: the body decoded;
        ``recorded_headers``: the fields for the record, one text each, when they must
        differ from those sent: a client credential the upstream echoed hidden, repeated
        fields such as ``Set-Cookie`` sent as lists). Without it ``headers`` must hold no
        list."""
        if self._answered:
            raise RuntimeError("The request was already answered")
        self._answered = True
        self.status = 0 if self._closed else status
        self._response_body = recorded
        self._response_json = parsed
        if recorded_headers is None:
            recorded_headers = cast("dict[str, str]", headers)  # no list in it (see above)
        self._response_headers = recorded_headers
        if not self._closed:
            self.server.answered(self.conn)
            send = None if self.method == "HEAD" or status in (204, 304) else data
            self.conn.send(status, headers, send)
            if recorded_headers is not None and "Connection" in headers:
                recorded_headers["Connection"] = headers["Connection"]  # as send() set it
        record(self)

    def _done(self) -> None:
        if self._active:
            self._active = False
            self.ctx.stats["active"] -= 1
