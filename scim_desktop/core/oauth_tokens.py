"""What the OAuth 2.0 authorization server keeps (pure data): the client, a consent request
waiting for the user, issued tokens (by the SHA-256 of their value, never the value) with
their persisted form, and what the window and the request authenticator are told about them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Client:
    """A confidential client (RFC 6749 §2.1): Okta, with the secret it authenticates with."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    name: str = "Okta"


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A validated authorization request waiting for the user's decision on the consent page.
    ``id`` names it in the form; ``csrf`` must come back with the decision."""

    id: str
    csrf: str
    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    #: Who asked (``oauth_protocol.origin_key``), for the per-client cap of the waiting table.
    origin: str = ""


@dataclass(slots=True)
class Token:
    """An issued token, kept by the SHA-256 of its value. ``grant_id`` ties together every
    token that came from one authorization (one code, its refreshes), so revoking a refresh
    token can end its access tokens too (RFC 7009 §2.1)."""

    id: str
    kind: str  # "access" | "refresh"
    hash: str
    client_id: str
    scope: str
    grant: str  # authorization_code | refresh_token | client_credentials
    grant_id: str
    issued_at: float
    expires_at: float | None
    revoked_at: float | None = None
    #: Refresh tokens: when this one was exchanged for a new one (rotation).
    rotated_at: float | None = None
    last_used_at: float | None = None
    #: Why it was revoked, for the window (e.g. a replayed refresh token).
    revoked_reason: str = ""
    #: The id of the refresh token this one was issued for (None: issued for a code or to
    #: client credentials); with ``grant_id`` it shows the family's line of descent.
    parent: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "sha256": self.hash,
            "client_id": self.client_id,
            "scope": self.scope,
            "grant": self.grant,
            "grant_id": self.grant_id,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "rotated_at": self.rotated_at,
            "last_used_at": self.last_used_at,
            "revoked_reason": self.revoked_reason,
            "parent": self.parent,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Token:
        def num(key: str) -> float | None:
            value = data.get(key)
            return float(value) if isinstance(value, int | float) else None

        kind = str(data["kind"])
        if kind not in ("access", "refresh"):
            raise ValueError(f"unknown token kind {kind!r}")
        issued = num("issued_at")
        if issued is None:
            raise ValueError("a token without issued_at")
        return Token(
            id=str(data["id"]),
            kind=kind,
            hash=str(data["sha256"]),
            client_id=str(data["client_id"]),
            scope=str(data.get("scope") or ""),
            grant=str(data.get("grant") or ""),
            grant_id=str(data.get("grant_id") or data["id"]),
            issued_at=issued,
            expires_at=num("expires_at"),
            revoked_at=num("revoked_at"),
            rotated_at=num("rotated_at"),
            last_used_at=num("last_used_at"),
            revoked_reason=str(data.get("revoked_reason") or ""),
            parent=str(data["parent"]) if data.get("parent") else None,
        )


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as the window lists it (never its value)."""

    id: str
    kind: str
    client_id: str
    scope: str
    grant: str
    issued_at: float
    expires_at: float | None
    last_used_at: float | None
    status: str  # active | expired | revoked | rotated
    #: Why a revoked token was revoked ("" otherwise).
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AccessCheck:
    """The outcome of checking a bearer access token (RFC 6750 §3.1)."""

    ok: bool
    token_id: str | None = None
    #: Why it was refused, for ``error_description`` and the SCIM error detail (a fixed
    #: ASCII sentence: it goes into the WWW-Authenticate header, RFC 6750 §3).
    reason: str = ""
    #: For a revoked token: why it was revoked (e.g. a replayed refresh token), for the
    #: SCIM error detail.
    revoked_reason: str = ""


def token_hash(value: str) -> str:
    """What is kept of a token or code: the hex SHA-256 of its value."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


__all__ = ["AccessCheck", "AuthorizationRequest", "Client", "Token", "TokenInfo", "token_hash"]
