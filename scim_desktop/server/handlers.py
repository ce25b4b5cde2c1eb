"""Thin Tornado handlers: decode -> core -> encode, with one error path to a SCIM Error.

Every response is ``application/scim+json; charset=utf-8``, errors included (RFC 7644 §3.12,
§8.1): a ScimError raised anywhere becomes its SCIM Error body here, an unexpected exception
becomes a 500 SCIM Error that is logged with its traceback, and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

import orjson
import tornado.httputil
import tornado.web

from scim_desktop.config import ServerConfig
from scim_desktop.core import errors
from scim_desktop.core.faults import FaultEngine, FaultRequest, relative_path
from scim_desktop.core.listing import list_response, parse_list_query, parse_search_request
from scim_desktop.core.okta import OktaClassifier, OktaRequest, Step
from scim_desktop.core.projection import make_projection, project
from scim_desktop.core.resources import Change, Outcome, ScimService, etag_matches, utc_now_iso
from scim_desktop.core.schemas import RESOURCE_TYPES, SCHEMAS, service_provider_config
from scim_desktop.server.auth import Authenticator
from scim_desktop.server.events import (
    EventSink,
    RequestRecord,
    ResourceChanged,
    cut_body,
    next_record_id,
    redact_body,
    redact_headers,
)

log = logging.getLogger("scim_desktop.server")

SCIM_CONTENT_TYPE = "application/scim+json; charset=utf-8"
_JSON_TYPES = ("application/scim+json", "application/json")
_RESOURCE_NAMES = {"users": "User", "groups": "Group"}
#: What a Host / X-Forwarded-Host may be: a name or address with an optional port.
_HOST_RE = re.compile(r"[A-Za-z0-9.\-_]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


def _is_loopback(host: str) -> bool:
    """Whether a Host value (with or without port) names this machine's loopback."""
    if host.startswith("["):
        name = host[1:].split("]", 1)[0]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.lower()
    return name in ("localhost", "::1") or name.startswith("127.")


def client_origin(request: tornado.httputil.HTTPServerRequest, public_url: str | None) -> str:
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


def publish_changes(ctx: ServerContext, changes: list[Change], base_url: str) -> None:
    """Tell the sink what changed, with each resource as clients now see it."""
    if not changes or not getattr(ctx.sink, "wants_changes", True):
        return
    for change in changes:
        resource = None
        if change.kind != "deleted" and ctx.store.get(change.rtype, change.id) is not None:
            resource = ctx.service.get(change.rtype, change.id, base_url).resource
        ctx.sink.publish(ResourceChanged(change.kind, change.rtype, change.id, resource))


@dataclass
class ServerContext:
    """Everything a handler needs; built once per server (Tornado ``initialize()`` injection)."""

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


class ScimHandler(tornado.web.RequestHandler):
    """Base for every endpoint: auth, body limit, JSON decoding, SCIM errors, request records."""

    ctx: ServerContext
    #: Whether response bodies may hold secrets and must be redacted in records (e.g. an
    #: OAuth token response). SCIM resources never carry a password.
    redact_response = False

    def initialize(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._started = time.perf_counter()
        self._arrived = utc_now_iso()
        self._response_body = b""
        self._response_obj: Any = None
        self._base_url: str | None = None
        self._changes: list[Change] = []
        self.fault: str | None = None
        self._dropped = False
        self._okta_request: OktaRequest | None = None
        self._okta_step: Step | None = None
        self._active = True
        ctx.stats["active"] = ctx.stats.get("active", 0) + 1

    def _done(self) -> None:
        if self._active:
            self._active = False
            self.ctx.stats["active"] -= 1

    def on_connection_close(self) -> None:
        self._done()

    # --- request side ------------------------------------------------------------------------
    async def prepare(self) -> None:
        # The HTTPServer reads bodies up to drain_cap() (larger ones close the connection);
        # anything over the configured limit is refused here with a SCIM 413, so clients that
        # send the whole body before reading still get the error.
        limit = self.ctx.config.max_body_bytes
        if len(self.request.body) > limit:
            raise errors.PayloadTooLarge(
                f"The request body is {len(self.request.body)} bytes; the limit is {limit} bytes"
            )
        self._classify()
        failure = self.ctx.auth.verify(self.request.headers.get("Authorization"))
        if failure is not None:
            raise errors.Unauthorized(
                failure.detail, headers={"WWW-Authenticate": failure.challenge}
            )
        await self._apply_fault()

    # --- Okta insight and faults -----------------------------------------------------------------
    def _classify(self) -> None:
        """Label the request with its Okta step (before faults, which may match on it)."""
        request = self.request
        try:
            body: Any = orjson.loads(request.body) if request.body else None
        except orjson.JSONDecodeError:
            body = None
        try:
            self._okta_request = OktaRequest(
                method=(request.method or "").upper(),
                path=relative_path(request.path, self.ctx.config.base_path),
                query={k: self.get_query_argument(k) for k in request.query_arguments},
                body=body,
                user_agent=request.headers.get("User-Agent", ""),
                time=time.monotonic(),
                client=request.remote_ip or "",
            )
            self._okta_step = self.ctx.okta.classify(self._okta_request)
        except Exception:  # labelling must never break serving
            log.exception("Could not classify %s %s", request.method, request.uri)
            self._okta_request = self._okta_step = None

    async def _apply_fault(self) -> None:
        """Answer the request with an injected fault if a rule fires (DESIGN.md "Faults"):
        SCIM handlers never know faults exist."""
        faults = self.ctx.faults
        if not faults.rules:
            return
        request = self.request
        decision = faults.decide(
            FaultRequest(
                method=(request.method or "").upper(),
                path=relative_path(request.path, self.ctx.config.base_path),
                step=self._okta_step.id if self._okta_step else None,
                client=request.remote_ip or "",
            )
        )
        if decision is None:
            return
        self.fault = decision.description
        if decision.latency_ms:
            await asyncio.sleep(decision.latency_ms / 1000)
            if self.request.connection.stream.closed():  # type: ignore[union-attr]
                raise tornado.web.Finish()  # the client gave up waiting (Okta: after 60 s)
        if decision.drop:
            # No response at all: the connection just closes.
            self._dropped = True
            self.request.connection.close()  # type: ignore[union-attr]
            raise tornado.web.Finish()
        if decision.empty:
            self.set_status(decision.status or 201)
            self.set_header("Content-Type", SCIM_CONTENT_TYPE)
            raise tornado.web.Finish()
        if decision.status is not None:
            self.respond(decision.status, decision.body, decision.headers)

    def json_body(self) -> Any:
        """The decoded request body: JSON in either SCIM's or plain JSON's media type."""
        ctype = self.request.headers.get("Content-Type", "")
        media = ctype.split(";", 1)[0].strip().lower()
        if media and media not in _JSON_TYPES and not media.endswith("+json"):
            raise errors.UnsupportedMediaType(
                f"Content-Type {media!r} is not supported; send application/scim+json "
                "or application/json"
            )
        if not self.request.body.strip():
            raise errors.InvalidSyntax("The request body is empty; a JSON object was expected")
        try:
            return orjson.loads(self.request.body)
        except orjson.JSONDecodeError as exc:
            raise errors.InvalidSyntax(f"The request body is not valid JSON: {exc}") from None

    @property
    def base_url(self) -> str:
        """The SCIM base URL as the client sees it (Host / X-Forwarded-* behind a tunnel; the
        tunnel's public URL for loopback requests while a tunnel is up). Worked out once per
        request."""
        cached = self._base_url
        if cached is None:
            origin = client_origin(self.request, self.ctx.public_url)
            cached = self._base_url = origin + self.ctx.config.base_path
        return cached

    # --- response side -----------------------------------------------------------------------
    def respond(
        self,
        status: int,
        body: dict[str, Any] | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.set_status(status)
        for name, value in (headers or {}).items():
            self.set_header(name, value)
        if body is None:
            self.clear_header("Content-Type")
            self.finish()
            return
        data = orjson.dumps(body)
        self._response_body = data
        self._response_obj = body
        self.set_header("Content-Type", SCIM_CONTENT_TYPE)
        self.finish(data)

    async def respond_outcome(self, status: int, outcome: Outcome) -> None:
        """Make the outcome's writes durable, then answer with its resource, limited by
        ``attributes`` / ``excludedAttributes`` when given (RFC 7644 §3.9)."""
        if outcome.resource is not None:
            rt = RESOURCE_TYPES[outcome.resource["meta"]["resourceType"]]
            projection = make_projection(
                self.get_query_argument("attributes", None),
                self.get_query_argument("excludedAttributes", None),
                rt,
            )
            location = outcome.resource["meta"]["location"]
            outcome.resource = project(outcome.resource, projection, rt)
        if outcome.changes:
            self._changes = outcome.changes
            await self.ctx.store.commit()
        headers: dict[str, str] = {}
        if outcome.version:
            headers["ETag"] = outcome.version
        if status == 201 and outcome.resource is not None:
            headers["Location"] = location
        self.respond(status, outcome.resource, headers)

    def compute_etag(self) -> str | None:
        # Single resources carry their own version as ETag (RFC 7644 §3.14); hashing every
        # list page as Tornado does by default would cost more than building it.
        return None

    def set_default_headers(self) -> None:
        self.clear_header("Server")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info: tuple[type[BaseException], BaseException, TracebackType] | None = kwargs.get(
            "exc_info"
        )
        exc = exc_info[1] if exc_info else None
        if isinstance(exc, errors.ScimError):
            error = exc
        elif status_code == 405:
            error = errors.MethodNotAllowed(
                f"{self.request.method} is not allowed on {self.request.path}"
            )
            methods = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
            allowed = [m for m in methods if self._has(m)]
            error.headers["Allow"] = ", ".join(allowed)
        elif isinstance(exc, tornado.web.HTTPError) and status_code < 500:
            error = errors.ScimError(exc.log_message or self._reason)
            error.status = status_code  # type: ignore[misc]
        else:
            error = errors.InternalError(
                "Internal server error; the server log has the details. The server keeps running."
            )
        self.respond(error.status, error.to_body(), error.headers)

    def _has(self, method: str) -> bool:
        own = getattr(type(self), method.lower(), None)
        return own is not None and own is not getattr(tornado.web.RequestHandler, method.lower())

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(value, errors.ScimError) or (
            isinstance(value, tornado.web.HTTPError) and value.status_code < 500
        ):
            return  # an expected client error; the request record shows it
        log.error(
            "Unexpected error in %s %s",
            self.request.method,
            self.request.uri,
            exc_info=(typ, value, tb),
        )  # type: ignore[arg-type]

    def _annotate(self, record: RequestRecord) -> RequestRecord:
        """Fill the Okta step from the request and its answer."""
        req, step = self._okta_request, self._okta_step
        if req is None or step is None:
            return record
        # The answer as built (list pages hold pre-encoded users, which the classifier need
        # not look into); only fault answers and the like are parsed back.
        response_body = self._response_obj
        if response_body is None and self._response_body:
            try:
                response_body = orjson.loads(self._response_body)
            except orjson.JSONDecodeError:
                response_body = None
        try:
            step = self.ctx.okta.note_response(
                req,
                step,
                record.status,
                self._headers.get("Retry-After"),
                response_body,
                duration_s=record.duration_ms / 1000,
            )
        except Exception:
            log.exception("Could not label %s %s", record.method, record.path)
        extra: dict[str, Any] = {}
        if step.page is not None:
            extra["okta_page"] = step.page
        if step.retry is not None:
            extra["okta_retry"] = step.retry
        if step.next_retry_in_s is not None:
            extra["okta_next_retry_in_s"] = step.next_retry_in_s
        if step.retry_gives_up:
            extra["okta_retry_gives_up"] = True
        return replace(
            record,
            okta_step=step.id,
            okta_label=step.label,
            okta_explanation=step.explanation,
            extra=extra,
        )

    def _recorded_response(self) -> str:
        """The response body for the record. SCIM answers are built by this server, which
        never returns a password (returned: never), so they need no redaction pass (a real
        cost on 60 KB list pages); anything else goes through redact_body."""
        if self._response_obj is not None and self.redact_response is False:
            return cut_body(self._response_body.decode("utf-8", errors="replace"))
        return redact_body(self._response_body)

    def on_finish(self) -> None:
        self._done()
        ctx = self.ctx
        ctx.stats["requests"] += 1
        status = self.get_status()
        if status >= 400:
            ctx.stats["errors"] += 1
        request = self.request
        # Bodies are kept only for sinks that show them (the window, --log jsonl).
        bodies = getattr(ctx.sink, "wants_bodies", True)
        try:
            record = RequestRecord(
                id=next_record_id(),
                time=self._arrived,
                method=request.method or "",
                path=request.path,
                query=request.query,
                status=0 if self._dropped else status,
                duration_ms=round((time.perf_counter() - self._started) * 1000, 3),
                client=request.remote_ip or "",
                request_headers=redact_headers(request.headers),
                request_body=redact_body(self.request.body) if bodies else "",
                # This server's own headers carry no credentials (no Set-Cookie either).
                response_headers=dict(self._headers.get_all()),
                response_body=self._recorded_response() if bodies else "",
                fault=self.fault,
            )
            record = self._annotate(record)
            publish_changes(ctx, self._changes, self.base_url)
            ctx.sink.publish(record)
        except Exception:  # an observer's failure must never break serving
            log.exception("Could not publish the record of %s %s", request.method, request.uri)


# --- endpoints ------------------------------------------------------------------------------
def _rtype(name: str) -> str:
    return _RESOURCE_NAMES[name.lower()]


class CollectionHandler(ScimHandler):
    """``/Users`` and ``/Groups``: list / filter (GET) and create (POST)."""

    def get(self, collection: str) -> None:
        rtype = _rtype(collection)
        query = parse_list_query(
            {k: self.get_query_argument(k) for k in self.request.query_arguments},
            RESOURCE_TYPES[rtype],
        )
        self.respond(200, self.ctx.service.list(rtype, query, self.base_url))

    def head(self, collection: str) -> None:
        self.get(collection)  # Tornado sends the headers only (RFC 9110 §9.3.2)

    async def post(self, collection: str) -> None:
        outcome = self.ctx.service.create(_rtype(collection), self.json_body(), self.base_url)
        await self.respond_outcome(201, outcome)


class SearchHandler(ScimHandler):
    """``POST /Users/.search`` and ``/Groups/.search`` (RFC 7644 §3.4.3)."""

    def post(self, collection: str) -> None:
        rtype = _rtype(collection)
        query = parse_search_request(self.json_body(), RESOURCE_TYPES[rtype])
        self.respond(200, self.ctx.service.list(rtype, query, self.base_url))


class RootSearchHandler(ScimHandler):
    """``POST /.search``: Users and Groups together."""

    def post(self) -> None:
        query = parse_search_request(self.json_body(), RESOURCE_TYPES["User"])
        self.respond(200, self.ctx.service.search_all(query, self.base_url))


class ResourceHandler(ScimHandler):
    """``/Users/{id}`` and ``/Groups/{id}``: read, replace, modify, delete."""

    def get(self, collection: str, rid: str) -> None:
        rtype = _rtype(collection)
        projection = make_projection(
            self.get_query_argument("attributes", None),
            self.get_query_argument("excludedAttributes", None),
            RESOURCE_TYPES[rtype],
        )
        outcome = self.ctx.service.get(rtype, rid, self.base_url, projection)
        if_none_match = self.request.headers.get("If-None-Match")
        if if_none_match and outcome.version and etag_matches(if_none_match, outcome.version):
            # RFC 7644 §3.14 / RFC 7232 §4.1: unchanged -> 304 with the ETag and no body.
            self.respond(304, None, {"ETag": outcome.version})
            return
        self.respond(200, outcome.resource, {"ETag": outcome.version or ""})

    def head(self, collection: str, rid: str) -> None:
        self.get(collection, rid)

    async def put(self, collection: str, rid: str) -> None:
        outcome = self.ctx.service.replace(
            _rtype(collection), rid, self.json_body(), self.base_url, self._if_match()
        )
        await self.respond_outcome(200, outcome)

    async def patch(self, collection: str, rid: str) -> None:
        rtype = _rtype(collection)
        outcome = self.ctx.service.patch(
            rtype, rid, self.json_body(), self.base_url, self._if_match()
        )
        # RFC 7644 §3.5.2: 200 with the resource, which is what Okta's tooling checks.
        await self.respond_outcome(200, outcome)

    async def delete(self, collection: str, rid: str) -> None:
        outcome = self.ctx.service.delete(_rtype(collection), rid, self._if_match())
        if outcome.changes:
            self._changes = outcome.changes
            await self.ctx.store.commit()
        self.respond(204, None)

    def _if_match(self) -> str | None:
        return self.request.headers.get("If-Match")


class DiscoveryHandler(ScimHandler):
    async def prepare(self) -> None:
        await super().prepare()
        if self._finished:
            return
        if "filter" in self.request.query_arguments:
            # RFC 7644 §4: a filter on a discovery endpoint SHOULD be refused with 403, so a
            # client cannot believe its conditions were applied.
            raise errors.Forbidden("Filtering is not supported on discovery endpoints")


class ServiceProviderConfigHandler(DiscoveryHandler):
    def get(self) -> None:
        self.respond(200, service_provider_config(self.base_url, auth_mode=self.ctx.auth.mode))


def _list_of(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return list_response(len(resources), resources, 1)


class SchemasHandler(DiscoveryHandler):
    def get(self, schema_id: str | None = None) -> None:
        if schema_id is None:
            self.respond(200, _list_of([s.to_scim(self.base_url) for s in SCHEMAS.values()]))
            return
        for sid, schema in SCHEMAS.items():
            if sid.lower() == schema_id.lower():
                self.respond(200, schema.to_scim(self.base_url))
                return
        raise errors.NotFound(f"Schema {schema_id} not found")


class ResourceTypesHandler(DiscoveryHandler):
    def get(self, type_id: str | None = None) -> None:
        if type_id is None:
            self.respond(200, _list_of([t.to_scim(self.base_url) for t in RESOURCE_TYPES.values()]))
            return
        for tid, rtype in RESOURCE_TYPES.items():
            if tid.lower() == type_id.lower():
                self.respond(200, rtype.to_scim(self.base_url))
                return
        raise errors.NotFound(f"ResourceType {type_id} not found")


class NotImplementedHandler(ScimHandler):
    """``/Me`` and ``/Bulk``: not offered (ServiceProviderConfig says bulk is unsupported)."""

    def _refuse(self, *args: str) -> None:
        endpoint = self.request.path.rsplit("/", 1)[-1] or "This endpoint"
        raise errors.NotImplementedByServer(f"{endpoint} is not implemented by this server")

    get = post = put = patch = delete = _refuse


class NotFoundHandler(ScimHandler):
    """Every other URL: a SCIM 404, never an HTML page."""

    def _missing(self, *args: str) -> None:
        raise errors.NotFound(
            f"No SCIM endpoint at {self.request.path}; the SCIM base URL is {self.base_url}"
        )

    get = post = put = patch = delete = head = options = _missing

    async def prepare(self) -> None:
        # Unknown URLs are answered 404 without authentication, so a wrong base URL in Okta
        # says "wrong URL" rather than "wrong token".
        return
