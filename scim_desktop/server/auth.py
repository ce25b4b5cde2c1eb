"""Request authentication: none, HTTP Basic or Bearer, compared in constant time."""

from __future__ import annotations

import base64
import binascii
import hmac

from scim_desktop.config import AuthConfig


class Authenticator:
    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self._token = config.token.encode()
        self._user = config.username.encode()
        self._password = config.password.encode()

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
        mode = self.config.mode
        if mode == "none":
            return True
        if not header:
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
