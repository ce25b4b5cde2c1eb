"""Request authentication: none, HTTP Basic, Bearer (compared in constant time), or OAuth 2.0
access tokens issued by this server (RFC 6750)."""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from scim_desktop.config import AuthConfig
from scim_desktop.core.oauth import OAuthServer

DEFAULT_DETAIL = (
    "Authentication failed: send the configured credentials in the Authorization header"
)


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """Why a request is refused: the SCIM error detail and the WWW-Authenticate value."""

    detail: str
    challenge: str


class Authenticator:
    def __init__(self, config: AuthConfig, oauth: OAuthServer | None = None) -> None:
        self.config = config
        self.oauth = oauth
        self._token = config.token.encode()
        self._user = config.username.encode()
        self._password = config.password.encode()
        #: The exact header a well-behaved client sends (Okta: ``Bearer <token>``), checked
        #: first in constant time; anything else is parsed.
        self._expected = (
            b"Bearer " + self._token
            if config.mode == "bearer"
            else b"Basic " + base64.b64encode(self._user + b":" + self._password)
        )
        if config.mode == "oauth" and oauth is None:
            raise ValueError("OAuth mode needs the OAuth server")

    @property
    def mode(self) -> str:
        return self.config.mode

    def challenge(self) -> str:
        """The WWW-Authenticate value for a 401 (RFC 7235 §4.1)."""
        if self.config.mode == "basic":
            return 'Basic realm="SCIM Desktop", charset="UTF-8"'
        return 'Bearer realm="SCIM Desktop"'

    def check(self, header: str | None) -> bool:
        """Whether an Authorization header value is acceptable."""
        return self.verify(header) is None

    def verify(self, header: str | None) -> AuthFailure | None:
        """None when the Authorization header value is acceptable, else why not."""
        mode = self.config.mode
        if mode == "oauth":
            return self._verify_oauth(header)
        if self._check_static(header):
            return None
        return AuthFailure(DEFAULT_DETAIL, self.challenge())

    def _verify_oauth(self, header: str | None) -> AuthFailure | None:
        assert self.oauth is not None
        scheme, _, credentials = (header or "").strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            # RFC 6750 §3.1: no error code when the request carries no token at all.
            return AuthFailure(
                "Authentication failed: send Authorization: Bearer <access token>; get one "
                "from this server's OAuth token URL",
                self.challenge(),
            )
        check = self.oauth.check_access(credentials)
        if check.ok:
            return None
        hint = {
            "The access token expired": "; refresh it at the token URL (grant_type=refresh_token)",
            "The access token was revoked": "; authorize again or refresh",
        }.get(check.reason, "")
        if check.revoked_reason:  # e.g. a replayed refresh token revoked the whole family
            hint = f" ({check.revoked_reason}){hint}"
        # RFC 6750 §3: error="invalid_token" for expired, revoked or unknown tokens. The
        # revocation reason goes into the SCIM detail only: the header value stays the fixed
        # ASCII sentence (RFC 6749 §5.2's character set).
        return AuthFailure(
            check.reason + hint,
            f'Bearer realm="SCIM Desktop", error="invalid_token", '
            f'error_description="{check.reason}"',
        )

    def _check_static(self, header: str | None) -> bool:
        mode = self.config.mode
        if mode == "none":
            return True
        if not header:
            return False
        try:
            if hmac.compare_digest(header.encode(), self._expected):
                return True
        except UnicodeEncodeError:
            return False
        scheme, _, credentials = header.strip().partition(" ")
        credentials = credentials.strip()
        if mode == "bearer":
            if scheme.lower() != "bearer":
                return False
            # hmac.compare_digest takes time independent of where the values differ.
            return hmac.compare_digest(credentials.encode(), self._token)
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(credentials, validate=True)
        except (binascii.Error, ValueError):
            return False
        user, sep, password = decoded.partition(b":")
        user_ok = hmac.compare_digest(user, self._user)
        password_ok = hmac.compare_digest(password, self._password)
        return bool(sep) and user_ok and password_ok
