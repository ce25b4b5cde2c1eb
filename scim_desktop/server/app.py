"""The Tornado application: routes under the SCIM base path, gzip for SCIM JSON."""

from __future__ import annotations

import tornado.httputil
import tornado.web

from scim_desktop.server.handlers import (
    CollectionHandler,
    NotFoundHandler,
    NotImplementedHandler,
    ResourceHandler,
    ResourceTypesHandler,
    RootSearchHandler,
    SchemasHandler,
    SearchHandler,
    ServerContext,
    ServiceProviderConfigHandler,
)


class ScimGZip(tornado.web.GZipContentEncoding):
    """Tornado's gzip transform, also for ``application/scim+json`` responses, and only when
    the client really accepts gzip (``gzip;q=0`` refuses it, RFC 9110 §12.5.3)."""

    CONTENT_TYPES = {*tornado.web.GZipContentEncoding.CONTENT_TYPES, "application/scim+json"}

    def __init__(self, request: tornado.httputil.HTTPServerRequest) -> None:
        super().__init__(request)
        self._gzipping = accepts_gzip(request.headers.get("Accept-Encoding", ""))


def accepts_gzip(header: str) -> bool:
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


def make_app(ctx: ServerContext) -> tornado.web.Application:
    bp = ctx.config.base_path.rstrip("/")
    kw = {"ctx": ctx}
    # Resource endpoints are matched case-insensitively: some clients write /users.
    coll = r"(?i:(Users|Groups))"
    routes = [
        (rf"{bp}/{coll}/?", CollectionHandler, kw),
        (rf"{bp}/{coll}/\.search/?", SearchHandler, kw),
        (rf"{bp}/{coll}/([^/]+)/?", ResourceHandler, kw),
        (rf"{bp}/\.search/?", RootSearchHandler, kw),
        (rf"{bp}/(?i:ServiceProviderConfigs?)/?", ServiceProviderConfigHandler, kw),
        (rf"{bp}/(?i:Schemas)/?", SchemasHandler, kw),
        (rf"{bp}/(?i:Schemas)/([^/]+)/?", SchemasHandler, kw),
        (rf"{bp}/(?i:ResourceTypes)/?", ResourceTypesHandler, kw),
        (rf"{bp}/(?i:ResourceTypes)/([^/]+)/?", ResourceTypesHandler, kw),
        (rf"{bp}/(?i:Me|Bulk)(?:/.*)?", NotImplementedHandler, kw),
    ]
    if ctx.oauth is not None:
        from scim_desktop.server.oauth_handlers import oauth_routes

        routes = oauth_routes(ctx) + routes
    return tornado.web.Application(
        routes,
        transforms=[ScimGZip],
        default_handler_class=NotFoundHandler,
        default_handler_args=kw,
        # Tornado's own access log is replaced by request records.
        log_function=lambda handler: None,
    )
