"""SCIM errors (RFC 7644 §3.12): one class per status / scimType.

Core code raises these; the server turns every one of them into a single SCIM Error body in
one place. ``detail`` is shown by Okta to the admin in its Tasks view, so it says in words
what was wrong and, where it helps, which attribute or id.
"""

from __future__ import annotations

from typing import Any, ClassVar

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    """Base class: an HTTP status, an optional RFC 7644 §3.12 scimType and a detail text."""

    status: ClassVar[int] = 400
    scim_type: ClassVar[str | None] = None

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers: dict[str, str] = dict(headers or {})

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status)}
        if self.scim_type:
            body["scimType"] = self.scim_type
        body["detail"] = self.detail
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r})"


# --- 400 with a scimType (RFC 7644 §3.12, Table 9) -------------------------------------------
class InvalidFilter(ScimError):
    scim_type = "invalidFilter"


class TooMany(ScimError):
    scim_type = "tooMany"


class Uniqueness(ScimError):
    status = 409
    scim_type = "uniqueness"


class Mutability(ScimError):
    scim_type = "mutability"


class InvalidSyntax(ScimError):
    scim_type = "invalidSyntax"


class InvalidPath(ScimError):
    scim_type = "invalidPath"


class NoTarget(ScimError):
    scim_type = "noTarget"


class InvalidValue(ScimError):
    scim_type = "invalidValue"


class InvalidVersion(ScimError):
    scim_type = "invalidVers"


class Sensitive(ScimError):
    status = 403
    scim_type = "sensitive"


class InvalidCursor(ScimError):
    """RFC 9865 §2.3: the cursor value is not recognised."""

    scim_type = "invalidCursor"


class ExpiredCursor(ScimError):
    """RFC 9865 §2.3: the cursor has expired."""

    scim_type = "expiredCursor"


# --- statuses without a scimType ---------------------------------------------------------------
class BadRequest(ScimError):
    status = 400


class Unauthorized(ScimError):
    status = 401


class Forbidden(ScimError):
    status = 403


class NotFound(ScimError):
    status = 404


class MethodNotAllowed(ScimError):
    status = 405


class Conflict(ScimError):
    status = 409


class PreconditionFailed(ScimError):
    status = 412


class PayloadTooLarge(ScimError):
    status = 413


class UnsupportedMediaType(ScimError):
    status = 415


class InternalError(ScimError):
    status = 500


class NotImplementedByServer(ScimError):
    status = 501


# --- proxy mode: the upstream, not the client, is at fault -------------------------------------
class BadGateway(ScimError):
    """RFC 9110 §15.6.3: the upstream could not be reached or its answer was unusable."""

    status = 502


class GatewayTimeout(ScimError):
    """RFC 9110 §15.6.5: the upstream did not answer in time."""

    status = 504
