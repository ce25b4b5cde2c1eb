"""OAuth 2.0 authorization server decisions, as Okta's provisioning client uses them.

Pure: no I/O, no Tornado. The clock and the random source are injected, so expiry and every
error path are unit-tested without sleeping. The server layer decodes requests into plain
mappings, calls :class:`OAuthServer`, and encodes what it returns. The rules that hold no
state (errors, redirect URIs, PKCE, parameters, request labels) are in
:mod:`~scim_desktop.core.oauth_protocol`, the data kept (client, consent requests, tokens) in
:mod:`~scim_desktop.core.oauth_tokens`; this module re-exports both.

Specifications:
- RFC 6749 (OAuth 2.0): authorization code grant (§4.1), client credentials (§4.4), refresh
  (§6), client authentication (§2.3.1), error responses (§4.1.2.1, §5.2).
- RFC 7636 (PKCE): ``code_challenge`` / ``code_verifier`` with ``S256`` or ``plain``.
- RFC 7009 (token revocation).
- RFC 6750 (bearer tokens): ``WWW-Authenticate: Bearer error="invalid_token"``.
- RFC 9700 (OAuth 2.0 Security BCP): PKCE downgrade protection, refresh token rotation.

Decisions worth knowing:
- Tokens are opaque random strings; only their SHA-256 is kept (and persisted), so the state
  file does not hold usable tokens.
- Refresh tokens rotate: each refresh returns a new refresh token and the old one stops
  working (RFC 9700 §4.14.2). Refresh tokens do not expire; they end when revoked.
- A rotated refresh token presented again is a replay: every token of its authorization (the
  token family: the code's tokens and all their refreshes) is revoked (RFC 9700 §4.14.2).
  One exception keeps a client's retry from ending the integration: within
  ``REFRESH_RETRY_WINDOW`` seconds of the rotation, while the new refresh token is still
  unused, the same refresh gets the same answer again (the same tokens, so no second branch
  of the family exists). Those answers are kept in memory only, for that window.
- An access token stays valid until it expires, even after a refresh: Okta may still have
  requests in flight with it, and RFC 6749 §6 does not ask for more.
- A reused authorization code is refused and the tokens issued from it are revoked
  (RFC 6749 §4.1.2).
- A code is spent by any token request that names it, also one that is refused (wrong client
  secret, PKCE, redirect URI, a JSON body...): it is single use (RFC 6749 §10.5), and a code
  seen in a refused request may have been disclosed (RFC 9700 §4.5). The client authorizes
  again; tokens already issued with a code are revoked only by an authenticated reuse.
- Consent requests waiting for the user's decision are never evicted before they expire. The
  table is bounded (``MAX_PENDING``) and one client address may hold ``MAX_PENDING_PER_ORIGIN``
  of them; past half of either, new ones expire sooner; past the cap, new ones go back to the
  client with ``temporarily_unavailable`` (RFC 6749 §4.1.2.1). An anonymous flood can delay
  new consents but never cancel one the user is looking at.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

# The request rules and the data live beside this module; they are re-exported here, so
# ``scim_desktop.core.oauth`` stays the one import for the rest of the project.
from scim_desktop.core.oauth_protocol import (
    PKCE_RE,
    AuthorizeError,
    OAuthError,
    OAuthStep,
    add_query,
    client_display_name,
    compile_redirect_pattern,
    describe_request,
    error_description,
    find_codes,
    normalize_scope,
    origin_key,
    pkce_matches,
    redirect_pattern_error,
    redirect_uri_allowed,
    s256_challenge,
)
from scim_desktop.core.oauth_protocol import single_param as _single
from scim_desktop.core.oauth_tokens import (
    AccessCheck,
    AuthorizationRequest,
    Client,
    Token,
    TokenInfo,
)
from scim_desktop.core.oauth_tokens import token_hash as _hash

DEFAULT_SCOPE = "scim"
#: RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is RECOMMENDED."
CODE_TTL = 120
#: How long a consent page may stay open before its Approve button no longer works.
PENDING_TTL = 600
#: ... once the waiting table (or one client's share of it) is half full: a flood's entries
#: free their places sooner, so new consents can start again soon after it stops.
PENDING_TTL_BUSY = 120
#: Consent requests waiting for a decision, in all and from one client address. Each holds
#: at most one request line (64 KiB), so the table stays a few MB at worst.
MAX_PENDING = 200
MAX_PENDING_PER_ORIGIN = 10
#: Revoked, rotated and expired tokens stay listed (for the window) this long, then go.
KEEP_DEAD_TOKENS = 24 * 3600
#: A refresh repeated this soon after it rotated the token (its answer lost, or two workers
#: refreshing at once) gets the same answer again instead of revoking the token family.
REFRESH_RETRY_WINDOW = 30


@dataclass(slots=True)
class _Code:
    grant_id: str
    client_id: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    used: bool = False
    #: Set when a refused token request named the code: why it can no longer be used.
    spent_by_refusal: str | None = None


@dataclass(frozen=True, slots=True)
class _RefreshAnswer:
    """What a refresh returned, kept (in memory, ``REFRESH_RETRY_WINDOW`` seconds) so that a
    retry of the same request gets the same tokens rather than revoking the family."""

    at: float
    requested_scope: str | None
    access_hash: str
    refresh_hash: str
    body: Mapping[str, Any]


# --- the server -----------------------------------------------------------------------------
class OAuthServer:
    """Clients, authorization codes and tokens. Not thread-safe: the server thread owns it."""

    def __init__(
        self,
        client: Client,
        *,
        token_ttl: int = 3600,
        default_scope: str = DEFAULT_SCOPE,
        clock: Callable[[], float] = time.time,
        new_secret: Callable[[], str] = lambda: secrets.token_urlsafe(32),
        code_ttl: int = CODE_TTL,
        refresh_retry_window: float = REFRESH_RETRY_WINDOW,
    ) -> None:
        self.client = client
        self.token_ttl = token_ttl
        self.default_scope = default_scope
        self.clock = clock
        self._new_secret = new_secret
        self.code_ttl = code_ttl
        self.refresh_retry_window = refresh_retry_window
        self._pending: dict[str, AuthorizationRequest] = {}
        self._codes: dict[str, _Code] = {}
        self._tokens: dict[str, Token] = {}  # by hash
        #: Recent refresh answers by the hash of the refresh token they rotated (memory only).
        self._answers: dict[str, _RefreshAnswer] = {}
        #: Grows with every change worth saving (issue, rotate, revoke); the server layer
        #: compares it to what it saved last.
        self.revision = 0

    # --- authorization endpoint (RFC 6749 §4.1.1, §4.1.2) -----------------------------------
    def begin_authorization(
        self, params: Mapping[str, list[str]], origin: str = ""
    ) -> AuthorizationRequest:
        """Validate an authorization request; the consent page shows the result. Raises
        :class:`AuthorizeError` (with a redirect URI only when redirecting is safe).
        ``origin`` is the requester's address, for the per-client cap (:func:`origin_key`)."""
        now = self.clock()
        self._prune(now)
        # Client and redirect URI first: until both are known good, nothing is redirected
        # (RFC 6749 §4.1.2.1, §10.15 open redirectors).
        try:
            client_id = _single(params, "client_id")
            redirect_uri = _single(params, "redirect_uri")
        except OAuthError as exc:
            raise AuthorizeError("invalid_request", exc.description) from None
        if client_id is None:
            raise AuthorizeError("invalid_request", "The client_id parameter is missing")
        if not hmac.compare_digest(client_id.encode(), self.client.client_id.encode()):
            raise AuthorizeError("invalid_request", f"Unknown client_id {client_id!r}")
        if redirect_uri is None:
            # §3.1.2.3: with several (or pattern) registrations the request must name one.
            raise AuthorizeError(
                "invalid_request",
                "The redirect_uri parameter is missing; it is required because several "
                "redirect URIs are allowed",
            )
        if not redirect_uri_allowed(redirect_uri, self.client.redirect_uris):
            raise AuthorizeError(
                "invalid_request",
                f"The redirect_uri {redirect_uri!r} is not allowed for this client; allow it "
                "with --oauth-redirect-uri",
            )
        state_values = [v for v in params.get("state", []) if v != ""]
        state = state_values[0] if len(state_values) == 1 else None

        def fail(error: str, description: str) -> AuthorizeError:
            return AuthorizeError(error, description, redirect_uri=redirect_uri, state=state)

        if len(state_values) > 1:
            raise fail("invalid_request", "The state parameter is repeated")
        try:
            response_type = _single(params, "response_type")
            scope = normalize_scope(_single(params, "scope"), self.default_scope)
            challenge = _single(params, "code_challenge")
            method = _single(params, "code_challenge_method")
        except OAuthError as exc:
            raise fail(exc.error, exc.description) from None
        if response_type is None:
            raise fail("invalid_request", "The response_type parameter is missing")
        if response_type != "code":
            raise fail(
                "unsupported_response_type",
                f"response_type {response_type!r} is not supported; use code",
            )
        if challenge is None and method is not None:
            raise fail("invalid_request", "code_challenge_method was sent without code_challenge")
        if challenge is not None:
            # RFC 7636 §4.3: the method defaults to "plain"; §4.4.1 errors are invalid_request.
            method = method or "plain"
            if method not in ("S256", "plain"):
                raise fail(
                    "invalid_request",
                    f"code_challenge_method {method!r} is not supported; use S256 or plain",
                )
            if not PKCE_RE.fullmatch(challenge):
                raise fail(
                    "invalid_request",
                    "code_challenge must be 43 to 128 unreserved characters (RFC 7636 §4.2)",
                )
        origin = origin_key(origin)
        ttl = self._pending_ttl(origin, now, fail)
        request = AuthorizationRequest(
            id=secrets.token_urlsafe(16),
            csrf=secrets.token_urlsafe(24),
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            state=state,
            code_challenge=challenge,
            code_challenge_method=method if challenge is not None else None,
            expires_at=now + ttl,
            origin=origin,
        )
        self._pending[request.id] = request
        return request

    def _pending_ttl(
        self, origin: str, now: float, fail: Callable[[str, str], AuthorizeError]
    ) -> float:
        """How long a new consent request may wait; raises ``temporarily_unavailable`` when
        the waiting table, or this client's share of it, is full. Nothing waiting is ever
        evicted to make room: the request the user is looking at must stay approvable."""
        mine = [r.expires_at for r in self._pending.values() if r.origin == origin]
        if len(self._pending) >= MAX_PENDING or len(mine) >= MAX_PENDING_PER_ORIGIN:
            # RFC 6749 §4.1.2.1: temporarily_unavailable exists because a 503 cannot be sent
            # back through the redirect.
            per_client = len(mine) >= MAX_PENDING_PER_ORIGIN
            frees = min(mine if per_client else (r.expires_at for r in self._pending.values()))
            wait = max(1, math.ceil(frees - now))
            raise fail(
                "temporarily_unavailable",
                f"Too many authorization requests {'from this address ' if per_client else ''}"
                f"are waiting for a decision ({len(mine) if per_client else len(self._pending)}"
                f"); try again in {wait} seconds",
            )
        busy = len(self._pending) >= MAX_PENDING // 2 or len(mine) >= MAX_PENDING_PER_ORIGIN // 2
        return PENDING_TTL_BUSY if busy else PENDING_TTL

    def pending_count(self) -> int:
        """How many consent requests are waiting for a decision (expired ones excluded)."""
        self._prune(self.clock())
        return len(self._pending)

    def decide(self, request_id: str, csrf: str, approve: bool) -> str:
        """The user approved or denied on the consent page: the URL to redirect the browser to,
        carrying ``code`` and ``state`` (§4.1.2) or ``error=access_denied`` (§4.1.2.1).
        Raises a non-redirectable :class:`AuthorizeError` for an unknown, expired or forged
        decision."""
        now = self.clock()
        self._prune(now)
        request = self._pending.get(request_id)
        if request is None:
            raise AuthorizeError(
                "invalid_request",
                "This authorization request is unknown or expired; start again from Okta",
            )
        if not hmac.compare_digest(csrf.encode(), request.csrf.encode()):
            raise AuthorizeError("invalid_request", "The form's CSRF token does not match")
        del self._pending[request_id]  # single use
        if not approve:
            return AuthorizeError(
                "access_denied",
                "The user denied the request",
                redirect_uri=request.redirect_uri,
                state=request.state,
            ).redirect_url()
        code = "ac_" + self._new_secret()
        self._codes[_hash(code)] = _Code(
            grant_id=secrets.token_hex(8),
            client_id=request.client_id,
            redirect_uri=request.redirect_uri,
            scope=request.scope,
            code_challenge=request.code_challenge,
            code_challenge_method=request.code_challenge_method,
            expires_at=now + self.code_ttl,
        )
        params = {"code": code}
        if request.state is not None:
            params["state"] = request.state
        return add_query(request.redirect_uri, params)

    def pending(self, request_id: str) -> AuthorizationRequest | None:
        return self._pending.get(request_id)

    # --- client authentication (RFC 6749 §2.3.1) --------------------------------------------
    def authenticate_client(
        self, authorization: str | None, params: Mapping[str, list[str]]
    ) -> Client:
        """The client, authenticated with HTTP Basic or with ``client_id`` and
        ``client_secret`` in the form body (never both: §2.3). Failures are ``invalid_client``,
        401 with a ``WWW-Authenticate`` challenge when Basic was used (§5.2)."""
        form_id = _single(params, "client_id")
        form_secret = _single(params, "client_secret")
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        if authorization and scheme.lower() == "basic":
            if form_secret is not None:
                raise OAuthError(
                    "invalid_request",
                    "Send the client credentials either with HTTP Basic or in the form, not both",
                )
            challenge = {"WWW-Authenticate": 'Basic realm="SCIM Desktop OAuth", charset="UTF-8"'}
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                raise OAuthError(
                    "invalid_client",
                    "Malformed HTTP Basic credentials",
                    status=401,
                    headers=challenge,
                ) from None
            raw_id, sep, raw_secret = decoded.partition(":")
            if not sep:
                raise OAuthError(
                    "invalid_client",
                    "Malformed HTTP Basic credentials",
                    status=401,
                    headers=challenge,
                )
            # §2.3.1: both parts are form-urlencoded before Basic encoding.
            client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
            if form_id is not None and form_id != client_id:
                raise OAuthError(
                    "invalid_request", "client_id in the form differs from the Basic credentials"
                )
            if not self._client_ok(client_id, secret):
                raise OAuthError(
                    "invalid_client",
                    "Client authentication failed: unknown client or wrong secret",
                    status=401,
                    headers=challenge,
                )
            return self.client
        if form_id is None or form_secret is None:
            raise OAuthError(
                "invalid_client",
                "Client authentication is required: send client_id and client_secret with "
                "HTTP Basic or in the form body",
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="SCIM Desktop OAuth"'},
            )
        if not self._client_ok(form_id, form_secret):
            raise OAuthError(
                "invalid_client", "Client authentication failed: unknown client or wrong secret"
            )
        return self.client

    def _client_ok(self, client_id: str, secret: str) -> bool:
        id_ok = hmac.compare_digest(client_id.encode(), self.client.client_id.encode())
        secret_ok = hmac.compare_digest(secret.encode(), self.client.client_secret.encode())
        return id_ok and secret_ok

    # --- token endpoint (RFC 6749 §3.2, §4.1.3, §4.4.2, §6) ---------------------------------
    def token(self, params: Mapping[str, list[str]], authorization: str | None) -> dict[str, Any]:
        """A token response (§5.1) for a token request; raises :class:`OAuthError` (§5.2).
        A refused request spends every authorization code it names (:meth:`spend_codes`)."""
        now = self.clock()
        self._prune(now)
        try:
            return self._token(params, authorization, now)
        except OAuthError as exc:
            self.token_request_refused(exc, (v for values in params.values() for v in values))
            raise

    def token_request_refused(self, error: OAuthError, values: Iterable[str]) -> None:
        """A token request is answered with ``error``: spend the codes among ``values`` (what
        the request carried) and say so in the error's description."""
        if self.spend_codes(values, error.description):
            error.description += (
                "; the authorization code in this request can no longer be used "
                "(RFC 6749 section 10.5): authorize again"
            )

    def spend_codes(self, values: Iterable[str], why: str) -> int:
        """A token request naming these values was refused: the authorization codes among
        them can no longer be exchanged. A code is single use and any attempt uses it (RFC
        6749 §10.5); one sent in a request we refuse (wrong secret or verifier, a JSON body
        that may sit in a proxy's log...) may have been disclosed (RFC 9700 §4.5). Codes
        already exchanged keep their tokens: revoking those needs the client's credentials
        (:meth:`_exchange_code`), else anyone who saw an old code could end the grant.
        Returns how many codes were spent."""
        spent = 0
        for value in values:
            record = self._codes.get(_hash(value))
            if record is not None and not record.used and record.spent_by_refusal is None:
                record.spent_by_refusal = why
                spent += 1
        return spent

    def _token(
        self, params: Mapping[str, list[str]], authorization: str | None, now: float
    ) -> dict[str, Any]:
        for name, values in params.items():
            if len([v for v in values if v != ""]) > 1:
                raise OAuthError("invalid_request", f"The {name} parameter is repeated")
        grant_type = _single(params, "grant_type")
        if grant_type is None:
            raise OAuthError("invalid_request", "The grant_type parameter is missing")
        if grant_type not in ("authorization_code", "refresh_token", "client_credentials"):
            raise OAuthError(
                "unsupported_grant_type",
                f"grant_type {grant_type!r} is not supported; use authorization_code, "
                "refresh_token or client_credentials",
            )
        client = self.authenticate_client(authorization, params)
        if grant_type == "authorization_code":
            return self._exchange_code(client, params, now)
        if grant_type == "refresh_token":
            return self._refresh(client, params, now)
        scope = normalize_scope(_single(params, "scope"), self.default_scope)
        # §4.4.3: "A refresh token SHOULD NOT be included."
        access = self._issue("access", client.client_id, scope, grant_type, None, now)
        return self._response(access, None, scope)

    def _exchange_code(
        self, client: Client, params: Mapping[str, list[str]], now: float
    ) -> dict[str, Any]:
        code = _single(params, "code")
        if code is None:
            raise OAuthError("invalid_request", "The code parameter is missing")
        record = self._codes.get(_hash(code))
        if record is None:
            raise OAuthError("invalid_grant", "The authorization code is unknown")
        if record.used:
            # §4.1.2: a code used twice is refused, and what it produced is revoked.
            revoked = self._revoke_grant(
                record.grant_id, now, "its authorization code was used again (RFC 6749 §4.1.2)"
            )
            raise OAuthError(
                "invalid_grant",
                "The authorization code was already used"
                + (f"; the {revoked} token(s) issued with it are revoked" if revoked else ""),
            )
        if record.spent_by_refusal is not None:
            raise OAuthError(
                "invalid_grant",
                "The authorization code can no longer be used: an earlier token request with it "
                f"was refused ({record.spent_by_refusal}); any attempt spends a code "
                "(RFC 6749 §10.5), so authorize again",
            )
        if record.client_id != client.client_id:
            raise OAuthError("invalid_grant", "The authorization code was issued to another client")
        if now >= record.expires_at:
            raise OAuthError("invalid_grant", "The authorization code expired; authorize again")
        # §4.1.3: redirect_uri is required here when the authorization request had one, and
        # must be identical (this server always requires it there).
        redirect_uri = _single(params, "redirect_uri")
        if redirect_uri is None:
            raise OAuthError("invalid_request", "The redirect_uri parameter is missing")
        if redirect_uri != record.redirect_uri:
            raise OAuthError(
                "invalid_grant", "redirect_uri does not match the one of the authorization request"
            )
        verifier = _single(params, "code_verifier")
        if record.code_challenge is not None:
            if verifier is None:
                raise OAuthError(
                    "invalid_grant", "code_verifier is required: the request used PKCE (RFC 7636)"
                )
            method = record.code_challenge_method or "plain"
            if not pkce_matches(verifier, record.code_challenge, method):
                raise OAuthError(
                    "invalid_grant", "code_verifier does not match code_challenge (RFC 7636 §4.6)"
                )
        elif verifier is not None:
            # RFC 9700 §2.1.1: refuse a verifier for a code issued without a challenge, so a
            # PKCE downgrade cannot go unnoticed.
            raise OAuthError(
                "invalid_grant", "code_verifier was sent, but the authorization used no PKCE"
            )
        record.used = True
        access = self._issue(
            "access", client.client_id, record.scope, "authorization_code", record.grant_id, now
        )
        refresh = self._issue(
            "refresh", client.client_id, record.scope, "authorization_code", record.grant_id, now
        )
        return self._response(access, refresh, record.scope)

    def _refresh(
        self, client: Client, params: Mapping[str, list[str]], now: float
    ) -> dict[str, Any]:
        value = _single(params, "refresh_token")
        if value is None:
            raise OAuthError("invalid_request", "The refresh_token parameter is missing")
        token = self._tokens.get(_hash(value))
        if token is None or token.kind != "refresh":
            raise OAuthError("invalid_grant", "The refresh token is unknown")
        if token.client_id != client.client_id:
            raise OAuthError("invalid_grant", "The refresh token was issued to another client")
        if token.revoked_at is not None:
            raise OAuthError("invalid_grant", "The refresh token was revoked; authorize again")
        requested = _single(params, "scope")
        if token.rotated_at is not None:
            retry = self._retry_answer(token, requested, now)
            if retry is not None:
                return retry
            # RFC 9700 §4.14.2: a rotated refresh token used again means two parties hold it
            # (and one may be an attacker); the server cannot tell which, so it revokes the
            # active tokens of the whole family and the client authorizes again.
            revoked = self._revoke_grant(
                token.grant_id,
                now,
                "a rotated refresh token of its authorization was presented again "
                "(RFC 9700 §4.14.2)",
            )
            raise OAuthError(
                "invalid_grant",
                "The refresh token was already used; refresh tokens rotate, so use the one "
                "returned by the last refresh. Its reuse may mean it was stolen, so every "
                f"token of this authorization is revoked ({revoked} were active; RFC 9700 "
                "§4.14.2); authorize again",
            )
        scope = token.scope
        if requested is not None:
            # §6: the new scope must not include anything not originally granted.
            wanted = normalize_scope(requested, token.scope)
            if not set(wanted.split()) <= set(token.scope.split()):
                raise OAuthError("invalid_scope", "The requested scope exceeds the granted scope")
            scope = wanted
        token.rotated_at = now
        token.last_used_at = now
        access = self._issue(
            "access", client.client_id, scope, "refresh_token", token.grant_id, now, token.id
        )
        refresh = self._issue(
            "refresh", client.client_id, token.scope, "refresh_token", token.grant_id, now, token.id
        )
        body = self._response(access, refresh, scope)
        self._answers[token.hash] = _RefreshAnswer(
            now, requested, _hash(access), _hash(refresh), dict(body)
        )
        return body

    def _retry_answer(
        self, token: Token, requested: str | None, now: float
    ) -> dict[str, Any] | None:
        """The answer of the refresh that rotated ``token``, when presenting it again is a
        retry rather than a replay: soon after (``refresh_retry_window``), the same request,
        and the tokens it returned still unused (refresh) and live. The same tokens come back,
        so no second branch of the family is created. Else None."""
        answer = self._answers.get(token.hash)
        if answer is None or now - answer.at > self.refresh_retry_window:
            return None
        if requested != answer.requested_scope:
            return None
        access = self._tokens.get(answer.access_hash)
        successor = self._tokens.get(answer.refresh_hash)
        if access is None or successor is None:
            return None
        if self._status(successor, now) != "active" or self._status(access, now) != "active":
            return None  # the successor was used (the answer arrived) or revoked
        token.last_used_at = now
        body = dict(answer.body)
        if access.expires_at is not None:
            body["expires_in"] = max(1, int(access.expires_at - now))
        return body

    def _issue(
        self,
        kind: str,
        client_id: str,
        scope: str,
        grant: str,
        grant_id: str | None,
        now: float,
        parent: str | None = None,
    ) -> str:
        value = ("at_" if kind == "access" else "rt_") + self._new_secret()
        token_id = secrets.token_hex(5)
        self._tokens[_hash(value)] = Token(
            id=token_id,
            kind=kind,
            hash=_hash(value),
            client_id=client_id,
            scope=scope,
            grant=grant,
            grant_id=grant_id or token_id,
            issued_at=now,
            expires_at=now + self.token_ttl if kind == "access" else None,
            parent=parent,
        )
        self.revision += 1
        return value

    def _response(self, access: str, refresh: str | None, scope: str) -> dict[str, Any]:
        # §5.1: access_token, token_type, expires_in (RECOMMENDED), refresh_token (OPTIONAL),
        # scope (when it differs from the request; always sent here, which is allowed).
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.token_ttl,
        }
        if refresh is not None:
            body["refresh_token"] = refresh
        body["scope"] = scope
        return body

    # --- resource access (RFC 6750) ---------------------------------------------------------
    def check_access(self, value: str) -> AccessCheck:
        """Whether ``value`` is a live access token issued here."""
        now = self.clock()
        token = self._tokens.get(_hash(value))
        if token is None or token.kind != "access":
            return AccessCheck(False, None, "The access token is unknown")
        if token.revoked_at is not None:
            return AccessCheck(
                False, token.id, "The access token was revoked", token.revoked_reason
            )
        if token.expires_at is not None and now >= token.expires_at:
            return AccessCheck(False, token.id, "The access token expired")
        if self._answers:
            self._forget_answers(now)
        token.last_used_at = now
        return AccessCheck(True, token.id)

    # --- revocation (RFC 7009) ----------------------------------------------------------------
    def revoke(self, params: Mapping[str, list[str]], authorization: str | None) -> None:
        """RFC 7009 §2.1: the client revokes one of its tokens. Unknown tokens are not an error
        (§2.2); revoking a refresh token also ends the access tokens of its grant."""
        client = self.authenticate_client(authorization, params)
        value = _single(params, "token")
        if value is None:
            raise OAuthError("invalid_request", "The token parameter is missing")
        token = self._tokens.get(_hash(value))
        if token is None or token.client_id != client.client_id:
            return  # §2.2: invalid tokens do not cause an error response
        self._revoke_token(token, self.clock(), "revoked by the client (RFC 7009)")

    def revoke_id(self, token_id: str) -> bool:
        """Revoke the token with this id (the window's Revoke button); False if unknown."""
        for token in self._tokens.values():
            if token.id == token_id:
                return self._revoke_token(token, self.clock(), "revoked in the window")
        return False

    def revoke_all(self) -> int:
        now = self.clock()
        count = 0
        for token in self._tokens.values():
            if self._status(token, now) == "active":
                token.revoked_at = now
                token.revoked_reason = "revoked in the window (Revoke all)"
                count += 1
        if count:
            self.revision += 1
        return count

    def _revoke_token(self, token: Token, now: float, reason: str) -> bool:
        if token.revoked_at is not None:
            return False
        if token.kind == "refresh":
            self._revoke_grant(token.grant_id, now, f"its refresh token was {reason}")
        token.revoked_at = now
        token.revoked_reason = reason
        self.revision += 1
        return True

    def _revoke_grant(self, grant_id: str, now: float, reason: str) -> int:
        """Revoke every token of one authorization (its family); returns how many of them
        were still active."""
        count = 0
        for token in self._tokens.values():
            if token.grant_id == grant_id and token.revoked_at is None:
                if self._status(token, now) == "active":
                    count += 1
                token.revoked_at = now
                token.revoked_reason = reason
        if count:
            self.revision += 1
        return count

    # --- listing and persistence ------------------------------------------------------------
    @staticmethod
    def _status(token: Token, now: float) -> str:
        if token.revoked_at is not None:
            return "revoked"
        if token.rotated_at is not None:
            return "rotated"
        if token.expires_at is not None and now >= token.expires_at:
            return "expired"
        return "active"

    def tokens(self) -> list[TokenInfo]:
        """Every token still listed, newest first."""
        now = self.clock()
        self._prune(now)
        infos = [
            TokenInfo(
                id=t.id,
                kind=t.kind,
                client_id=t.client_id,
                scope=t.scope,
                grant=t.grant,
                issued_at=t.issued_at,
                expires_at=t.expires_at,
                last_used_at=t.last_used_at,
                status=self._status(t, now),
                reason=t.revoked_reason if t.revoked_at is not None else "",
            )
            for t in self._tokens.values()
        ]
        infos.sort(key=lambda i: i.issued_at, reverse=True)
        return infos

    def export_state(self) -> list[dict[str, Any]]:
        """The tokens worth keeping across a restart (hashes only, never values)."""
        self._prune(self.clock())
        return [t.to_json() for t in self._tokens.values()]

    def load_state(self, tokens: Iterable[Mapping[str, Any]]) -> int:
        """Take back tokens saved by :meth:`export_state`; ones for another client are
        dropped. Returns how many were loaded; raises ValueError for malformed entries."""
        loaded = 0
        for data in tokens:
            token = Token.from_json(data)
            if token.client_id != self.client.client_id:
                continue
            self._tokens[token.hash] = token
            loaded += 1
        self._prune(self.clock())
        return loaded

    def _forget_answers(self, now: float) -> None:
        """Drop refresh answers past the retry window: they hold token values, so they are
        kept in memory only, and briefly."""
        for key in [k for k, a in self._answers.items() if now - a.at > self.refresh_retry_window]:
            del self._answers[key]

    def _prune(self, now: float) -> None:
        for rid in [r.id for r in self._pending.values() if now >= r.expires_at]:
            del self._pending[rid]
        self._forget_answers(now)
        for key in [k for k, c in self._codes.items() if now >= c.expires_at + 3600]:
            del self._codes[key]  # kept an hour past expiry to recognise reuse
        dead = []
        for key, token in self._tokens.items():
            ended = token.revoked_at or token.rotated_at
            if ended is None and token.expires_at is not None and now >= token.expires_at:
                ended = token.expires_at
            if ended is not None and now - ended > KEEP_DEAD_TOKENS:
                dead.append(key)
        for key in dead:
            del self._tokens[key]


__all__ = [
    "CODE_TTL",
    "DEFAULT_SCOPE",
    "MAX_PENDING",
    "MAX_PENDING_PER_ORIGIN",
    "PENDING_TTL",
    "PENDING_TTL_BUSY",
    "REFRESH_RETRY_WINDOW",
    "AccessCheck",
    "AuthorizationRequest",
    "AuthorizeError",
    "Client",
    "OAuthError",
    "OAuthServer",
    "OAuthStep",
    "Token",
    "TokenInfo",
    "add_query",
    "client_display_name",
    "compile_redirect_pattern",
    "describe_request",
    "error_description",
    "find_codes",
    "origin_key",
    "pkce_matches",
    "redirect_pattern_error",
    "redirect_uri_allowed",
    "s256_challenge",
]
