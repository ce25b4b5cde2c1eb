"""OAuth 2.0 endpoints (thin: decode -> core.oauth -> encode) and the token file.

- ``GET /oauth/authorize``: the consent page (RFC 6749 §4.1.1); errors that may not be
  redirected (unknown client, redirect URI not allowed) show an error page instead (§4.1.2.1).
- ``POST /oauth/authorize``: the Approve / Deny form, with its CSRF token; 303 to the client's
  redirect URI with ``code`` and ``state`` or ``error=access_denied`` (§4.1.2).
- ``POST /oauth/token``: authorization_code, refresh_token, client_credentials (§4.1.3, §6,
  §4.4.2); JSON answers with ``Cache-Control: no-store`` (§5.1, §5.2).
- ``POST /oauth/revoke``: RFC 7009.
- ``GET /.well-known/oauth-authorization-server``: RFC 8414 metadata.

Every request is published as a RequestRecord like SCIM requests, with codes, secrets and
tokens redacted (query, form body, the redirect's Location, the token response).
"""

from __future__ import annotations

import html
import logging
import re
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import unquote_plus, urlsplit

import orjson
import tornado.web
from tornado.httputil import HTTPHeaders

from scim_desktop.config import OAuthConfig, move_aside, read_oauth_file, write_private_file
from scim_desktop.core.oauth import (
    AuthorizationRequest,
    AuthorizeError,
    Client,
    OAuthError,
    OAuthServer,
    client_display_name,
    describe_request,
    find_codes,
    origin_key,
)
from scim_desktop.core.resources import utc_now_iso
from scim_desktop.server.events import (
    RequestRecord,
    next_record_id,
    redact_headers,
    redact_oauth_body,
    redact_params,
)

log = logging.getLogger("scim_desktop.server")

JSON_TYPE = "application/json;charset=UTF-8"
HTML_TYPE = "text/html; charset=utf-8"
FORM_TYPE = "application/x-www-form-urlencoded"
#: The largest body the OAuth endpoints take (a token request or the consent form is a few
#: hundred bytes). Anyone may call them, so ``--max-body`` (set high for big groups) must not
#: decide how much an unauthenticated client makes the server buffer; ``ScimServer.admit``
#: sets it as the request's ``body_limit`` so a longer body is never read.
MAX_OAUTH_BODY = 64 * 1024
_HIDDEN_RE = re.compile(r'(name="(?:csrf|request)" value=")[^"]*"')


# --- the token file ---------------------------------------------------------------------------
@dataclass
class OAuthRuntime:
    """The OAuth server of a running SCIM server, and where its tokens are kept. Lives on the
    server thread."""

    server: OAuthServer
    config: OAuthConfig
    warnings: list[str] = field(default_factory=list)
    _saved_revision: int = 0

    @staticmethod
    def open(config: OAuthConfig) -> OAuthRuntime:
        client = Client(config.client_id, config.client_secret, config.redirect_uris)
        server = OAuthServer(client, token_ttl=config.token_ttl, default_scope=config.default_scope)
        runtime = OAuthRuntime(server, config)
        path = config.state_path
        if path is not None:
            try:
                data = read_oauth_file(path)
                server.load_state(data.get("tokens") or [])
            except (ValueError, KeyError, TypeError) as exc:
                moved = move_aside(path)
                runtime.warnings.append(
                    f"The OAuth token file was unreadable ({exc}); it was moved to {moved} and "
                    "Okta must authorize again."
                )
            except OSError as exc:
                runtime.warnings.append(
                    f"Cannot read the OAuth token file {path}: {exc.strerror or exc}"
                )
        runtime._saved_revision = server.revision
        return runtime

    def save_if_changed(self) -> None:
        """Write the client and the issued tokens (hashes only) atomically, mode 0600, when
        they changed; a failure is logged, never raised into a request."""
        path = self.config.state_path
        if path is None or self.server.revision == self._saved_revision:
            return
        data = {
            "version": 1,
            "client_id": self.config.client_id,
            "client_secret": self.config.client_secret,
            "tokens": self.server.export_state(),
        }
        try:
            write_private_file(path, orjson.dumps(data, option=orjson.OPT_INDENT_2))
        except OSError as exc:
            log.error("Cannot save the OAuth tokens to %s: %s", path, exc.strerror or exc)
            return
        self._saved_revision = self.server.revision


# --- pages ----------------------------------------------------------------------------------
_STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f3f4f7;
color:#1d2330;margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center}
main{background:#fff;border-radius:14px;box-shadow:0 6px 28px rgba(20,30,60,.10);
padding:32px 36px;max-width:460px;width:calc(100% - 32px);box-sizing:border-box}
.brand{color:#5b6475;font-size:13px;letter-spacing:.04em;text-transform:uppercase;margin:0 0 8px}
h1{font-size:21px;line-height:1.3;margin:0 0 20px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:8px 18px;margin:0 0 26px}
dt{color:#5b6475}dd{margin:0;overflow-wrap:anywhere;font:13px/1.6 ui-monospace,Menlo,monospace}
.buttons{display:flex;gap:12px}
button{flex:1;font:inherit;padding:11px 0;border-radius:9px;border:1px solid #c9ced8;
background:#fff;color:#1d2330;cursor:pointer}
button:hover{background:#f3f4f7}
button.approve{background:#1662dd;border-color:#1662dd;color:#fff;font-weight:600}
button.approve:hover{background:#0f52bd}
p.note{color:#5b6475;font-size:13px;margin:22px 0 0}
.error h1{color:#b3261e}
"""


def _page(title: str, body: str, css_class: str = "") -> str:
    cls = f' class="{css_class}"' if css_class else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main{cls}>{body}</main></body></html>\n"
    )


def consent_page(request: AuthorizationRequest) -> str:
    e = html.escape
    who = client_display_name(request.redirect_uri)
    returns_to = urlsplit(request.redirect_uri).netloc
    pkce = (
        f"<dt>PKCE</dt><dd>{e(request.code_challenge_method or '')}</dd>"
        if request.code_challenge
        else ""
    )
    body = (
        '<p class="brand">SCIM Desktop</p>'
        f"<h1>Allow {e(who)} to provision users and groups on this SCIM server?</h1>"
        "<dl>"
        f"<dt>Application</dt><dd>SCIM Desktop mock SCIM 2.0 server</dd>"
        f"<dt>Client</dt><dd>{e(request.client_id)}</dd>"
        f"<dt>Scope</dt><dd>{e(request.scope)}</dd>"
        f"<dt>Returns to</dt><dd>{e(returns_to)}</dd>"
        f"{pkce}"
        "</dl>"
        '<form method="post" action="/oauth/authorize">'
        f'<input type="hidden" name="request" value="{e(request.id)}">'
        f'<input type="hidden" name="csrf" value="{e(request.csrf)}">'
        '<div class="buttons">'
        '<button type="submit" name="decision" value="deny">Deny</button>'
        '<button class="approve" type="submit" name="decision" value="approve" autofocus>'
        "Approve</button></div></form>"
        f'<p class="note">Approving sends you back to {e(who)} with a one-time code, which it '
        "exchanges for an access token to create, update and deactivate users and groups "
        "here.</p>"
    )
    return _page(f"Authorize {who} — SCIM Desktop", body)


def error_page(error: OAuthError) -> str:
    e = html.escape
    body = (
        '<p class="brand">SCIM Desktop</p>'
        "<h1>This authorization request cannot continue</h1>"
        f"<dl><dt>Error</dt><dd>{e(error.error)}</dd>"
        f"<dt>Why</dt><dd>{e(error.description)}</dd></dl>"
        '<p class="note">Nothing was sent back to the application. Check the authorize URL '
        "and the allowed redirect URIs (--oauth-redirect-uri), then start again from Okta.</p>"
    )
    return _page("Authorization error — SCIM Desktop", body, "error")


# --- handlers -------------------------------------------------------------------------------
class OAuthHandler(tornado.web.RequestHandler):
    """Shared by the OAuth endpoints: no-store caching, size limit, records, JSON errors."""

    endpoint = ""

    def initialize(self, ctx: Any) -> None:
        self.ctx = ctx
        self.runtime: OAuthRuntime = ctx.oauth
        self.oauth: OAuthServer = ctx.oauth.server
        self._started = time.perf_counter()
        self._arrived = utc_now_iso()
        self._response_body = b""
        self._grant_type: str | None = None

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        # RFC 6749 §5.1: responses with tokens or credentials must not be cached.
        self.set_header("Cache-Control", "no-store")
        self.set_header("Pragma", "no-cache")

    def prepare(self) -> None:
        limit = min(self.ctx.config.max_body_bytes, MAX_OAUTH_BODY)
        # A body too long to read reaches here empty, with its declared length.
        size = max(len(self.request.body), getattr(self.request.connection, "declared_length", 0))
        if size > limit:
            raise OAuthError(
                "invalid_request", f"The request body is larger than {limit} bytes", status=413
            )

    def origin(self) -> str:
        from scim_desktop.server.handlers import client_origin

        return client_origin(self.request, self.ctx.public_url)

    def form(self) -> dict[str, list[str]]:
        """The form-encoded body parameters (RFC 6749 §3.2: the token endpoint takes
        ``application/x-www-form-urlencoded``)."""
        media = self.request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if media != FORM_TYPE:
            raise OAuthError(
                "invalid_request", f"Send the parameters as {FORM_TYPE} (RFC 6749 §3.2)"
            )
        return self._decode(self.request.body_arguments)

    @staticmethod
    def _decode(arguments: dict[str, list[bytes]]) -> dict[str, list[str]]:
        try:
            return {k: [v.decode("utf-8") for v in vs] for k, vs in arguments.items()}
        except UnicodeDecodeError:
            raise OAuthError("invalid_request", "Parameters must be UTF-8") from None

    def send_json(
        self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None
    ) -> None:
        self.set_status(status)
        for name, value in (headers or {}).items():
            self.set_header(name, value)
        if body is None:
            self.finish()
            return
        data = orjson.dumps(body)
        self._response_body = data
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(data)

    def send_html(self, status: int, page: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", HTML_TYPE)
        # The consent page must not be framed (clickjacking, RFC 6749 §10.13) and loads nothing.
        self.set_header("X-Frame-Options", "DENY")
        self.set_header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        )
        self.set_header("Referrer-Policy", "no-referrer")
        data = page.encode("utf-8")
        self._response_body = data
        self.finish(data)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info: tuple[type[BaseException], BaseException, TracebackType] | None = kwargs.get(
            "exc_info"
        )
        exc = exc_info[1] if exc_info else None
        if isinstance(exc, OAuthError):
            error = exc
        elif status_code == 405:
            error = OAuthError(
                "invalid_request", f"{self.request.method} is not allowed here", status=405
            )
        elif status_code < 500:
            error = OAuthError("invalid_request", self._reason, status=status_code)
        else:
            error = OAuthError(
                "server_error", "Internal server error; the server log has the details", status=500
            )
        self.answer_error(error)

    def answer_error(self, error: OAuthError) -> None:
        self.send_json(error.status, error.to_body(), error.headers)

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(value, OAuthError) or (
            isinstance(value, tornado.web.HTTPError) and value.status_code < 500
        ):
            return
        log.error(
            "Unexpected error in %s %s",
            self.request.method,
            self.request.path,
            exc_info=(typ, value, tb),  # type: ignore[arg-type]
        )

    def on_finish(self) -> None:
        request = self.request
        # Bodies are kept only for sinks that show them (the window, --log jsonl).
        bodies = getattr(self.ctx.sink, "wants_bodies", True)
        try:
            # A body is redacted by what it holds, not by its Content-Type: a code or secret
            # sent as JSON (or as JSON labelled a form) is hidden like a form field.
            request_body = redact_oauth_body(request.body) if bodies else ""
            response_type = str(self._headers.get("Content-Type", ""))
            if not bodies:
                response_body = ""
            elif response_type.startswith("text/html"):
                response_body = _HIDDEN_RE.sub(
                    r'\1***"', self._response_body.decode("utf-8", errors="replace")
                )
            else:
                response_body = redact_oauth_body(self._response_body)
            step = describe_request(request.method or "", self.endpoint, self._grant_type)
            record = RequestRecord(
                id=next_record_id(),
                time=self._arrived,
                method=request.method or "",
                path=request.path,
                query=redact_params(request.query),
                status=self.get_status(),
                duration_ms=round((time.perf_counter() - self._started) * 1000, 3),
                client=request.remote_ip or "",
                request_headers=redact_headers(request.headers),
                request_body=request_body,
                response_headers=redact_headers(HTTPHeaders(self._headers)),
                response_body=response_body,
                okta_step=step.id,
                okta_label=step.label,
                okta_explanation=step.explanation,
            )
            self.ctx.sink.publish(record)
        except Exception:  # an observer's failure must never break serving
            log.exception("Could not publish the record of %s %s", request.method, request.path)


class AuthorizeHandler(OAuthHandler):
    """The authorization endpoint (RFC 6749 §3.1, §4.1.1) and its consent form."""

    endpoint = "authorize"

    def answer_error(self, error: OAuthError) -> None:
        if isinstance(error, AuthorizeError) and error.redirect_uri is not None:
            self.redirect(error.redirect_url(), status=302)
            return
        self.send_html(error.status if error.status >= 400 else 400, error_page(error))

    def get(self) -> None:
        params = self._decode(self.request.query_arguments)
        # The client's address counts against the per-client cap of waiting consent requests.
        origin = origin_key(
            self.request.remote_ip or "", self.request.headers.get("X-Forwarded-For")
        )
        request = self.oauth.begin_authorization(params, origin)
        self.send_html(200, consent_page(request))

    def post(self) -> None:
        params = self.form()
        decision = (params.get("decision") or [""])[0]
        if decision not in ("approve", "deny"):
            raise AuthorizeError("invalid_request", "The form did not say approve or deny")
        url = self.oauth.decide(
            (params.get("request") or [""])[0],
            (params.get("csrf") or [""])[0],
            approve=decision == "approve",
        )
        # RFC 9700 §4.12: 303 after a POST, so the browser never re-posts the form to the
        # client.
        self.redirect(url, status=303)


class TokenHandler(OAuthHandler):
    """The token endpoint (RFC 6749 §3.2)."""

    endpoint = "token"

    def post(self) -> None:
        grant = self.request.body_arguments.get("grant_type") or [b""]
        self._grant_type = grant[0].decode("utf-8", errors="replace") or None
        try:
            params = self.form()
            try:
                body = self.oauth.token(params, self.request.headers.get("Authorization"))
            finally:
                # Also after an error: a reused code or a replayed refresh token revokes
                # tokens (RFC 6749 §4.1.2, RFC 9700 §4.14.2).
                self.runtime.save_if_changed()
        except OAuthError as exc:
            # The core spent the codes of the form; a code sent in the query or in a body
            # that is not a form (JSON: refused, §3.2) is spent as well (RFC 6749 §10.5).
            self.oauth.token_request_refused(
                exc,
                find_codes(unquote_plus(self.request.query)) + find_codes(self.request.body),
            )
            raise
        self.send_json(200, body)

    def get(self) -> None:
        raise OAuthError(
            "invalid_request", "Use POST for the token endpoint (RFC 6749 §3.2)", status=405
        )


class RevokeHandler(OAuthHandler):
    """Token revocation (RFC 7009 §2)."""

    endpoint = "revoke"

    def post(self) -> None:
        try:
            self.oauth.revoke(self.form(), self.request.headers.get("Authorization"))
        finally:
            self.runtime.save_if_changed()
        self.send_json(200, None)  # §2.2: 200 also for tokens that were already invalid


class MetadataHandler(OAuthHandler):
    """Authorization server metadata (RFC 8414 §3)."""

    endpoint = "metadata"

    def get(self) -> None:
        origin = self.origin()
        self.send_json(
            200,
            {
                "issuer": origin,
                "authorization_endpoint": f"{origin}/oauth/authorize",
                "token_endpoint": f"{origin}/oauth/token",
                "revocation_endpoint": f"{origin}/oauth/revoke",
                "response_types_supported": ["code"],
                "grant_types_supported": [
                    "authorization_code",
                    "refresh_token",
                    "client_credentials",
                ],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "revocation_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "code_challenge_methods_supported": ["S256", "plain"],
                "scopes_supported": [self.runtime.config.default_scope],
            },
        )


def oauth_routes(ctx: Any) -> list[tuple[str, type[tornado.web.RequestHandler], dict[str, Any]]]:
    kw = {"ctx": ctx}
    return [
        (r"/oauth/authorize/?", AuthorizeHandler, kw),
        (r"/oauth/token/?", TokenHandler, kw),
        (r"/oauth/revoke/?", RevokeHandler, kw),
        (r"/\.well-known/oauth-authorization-server/?", MetadataHandler, kw),
    ]
