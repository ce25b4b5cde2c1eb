"""The Tornado application: routes under the SCIM base path, gzip for SCIM JSON."""

from __future__ import annotations

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
    """Tornado's gzip transform, also for ``application/scim+json`` responses."""

    CONTENT_TYPES = {*tornado.web.GZipContentEncoding.CONTENT_TYPES, "application/scim+json"}


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
    return tornado.web.Application(
        routes,
        transforms=[ScimGZip],
        default_handler_class=NotFoundHandler,
        default_handler_args=kw,
        # Tornado's own access log is replaced by request records.
        log_function=lambda handler: None,
    )
