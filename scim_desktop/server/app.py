"""What the HTTP server serves: the SCIM endpoints, plus the OAuth pages in OAuth mode."""

from __future__ import annotations

import re

import tornado.web

from scim_desktop.server.handlers import ScimServer, ServerContext, accepts_gzip

__all__ = ["accepts_gzip", "make_app"]


def make_app(ctx: ServerContext) -> ScimServer:
    """The request handler for :class:`~scim_desktop.server.http1.HttpServer`."""
    if ctx.oauth is None:
        return ScimServer(ctx)
    from scim_desktop.server.oauth_handlers import oauth_routes

    routes = oauth_routes(ctx)
    fallback = tornado.web.Application(
        routes,
        # Tornado's own access log is replaced by request records.
        log_function=lambda handler: None,
    )
    paths = re.compile("|".join(f"(?:{pattern})" for pattern, _, _ in routes))
    return ScimServer(ctx, fallback, paths)
