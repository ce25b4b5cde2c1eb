"""OAuth 2.0 request rules that hold no state (pure): the errors and what their descriptions
may contain, redirect URI matching, PKCE, parameter and scope parsing, who a request counts
against, where authorization codes hide in a request, and the labels of OAuth requests in
the request log. :mod:`scim_desktop.core.oauth` (the authorization server) builds on these
and re-exports them.

Specifications: RFC 6749 (OAuth 2.0), RFC 7636 (PKCE), RFC 9700 (Security BCP).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

#: The authorization codes this server issues: "ac_" and a URL-safe random string.
_CODE_RE = re.compile(r"ac_[A-Za-z0-9_\-]{16,}")
#: How much of a refused token request body is searched for codes to spend.
_SCAN_LIMIT = 1 << 20
_JSON_SCAN_LIMIT = 64 * 1024

#: RFC 7636 §4.1: code_verifier = 43*128unreserved; the S256 challenge has the same form.
PKCE_RE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
#: RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), separated by spaces.
_SCOPE_TOKEN_RE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
#: What ``*`` in an allowed redirect URI stands for: RFC 3986 unreserved characters only.
_WILDCARD = r"[A-Za-z0-9\-._~]+"


# --- errors ---------------------------------------------------------------------------------
#: RFC 6749 §4.1.2.1, §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
_DESCRIPTION_MAP = str.maketrans({"§": "section ", '"': "'", "\\": "/", "\n": " ", "\t": " "})


def error_description(text: str) -> str:
    """``text`` in the characters an OAuth ``error_description`` may hold (RFC 6749 §5.2):
    "§" spelled out, quotes and backslashes swapped, anything else outside printable ASCII
    (also from client input quoted in a message) as "?"."""
    text = text.translate(_DESCRIPTION_MAP)
    return "".join(c if " " <= c <= "~" else "?" for c in text)


class OAuthError(Exception):
    """An RFC 6749 error response: ``error`` is one of the registered codes (§5.2:
    invalid_request, invalid_client, invalid_grant, unauthorized_client,
    unsupported_grant_type, invalid_scope; §4.1.2.1 adds access_denied,
    unsupported_response_type, server_error)."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        description = error_description(description)
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = dict(headers or {})

    def to_body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class AuthorizeError(OAuthError):
    """An authorization endpoint error. ``redirect_uri`` is set only when the error may be sent
    back to the client: RFC 6749 §4.1.2.1 forbids redirecting when the client or the redirect
    URI is missing, unknown or not allowed (the user sees an error page instead)."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        redirect_uri: str | None = None,
        state: str | None = None,
    ) -> None:
        super().__init__(error, description, status=400)
        self.redirect_uri = redirect_uri
        self.state = state

    def redirect_url(self) -> str:
        assert self.redirect_uri is not None
        params = {"error": self.error, "error_description": self.description}
        if self.state is not None:
            params["state"] = self.state
        return add_query(self.redirect_uri, params)


# --- redirect URIs --------------------------------------------------------------------------
def redirect_pattern_error(pattern: str) -> str | None:
    """Why ``pattern`` cannot be an allowed redirect URI, or None. RFC 6749 §3.1.2: an absolute
    URI without a fragment."""
    if any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in pattern):
        return "must be printable ASCII without spaces"
    parts = urlsplit(pattern.replace("*", "x"))
    if parts.scheme not in ("https", "http") or not parts.netloc:
        return "must be an absolute http(s) URI"
    if "#" in pattern:
        return "must not contain a fragment (RFC 6749 §3.1.2)"
    if "\\" in pattern:
        return "must not contain a backslash"
    return None


def compile_redirect_pattern(pattern: str) -> re.Pattern[str]:
    """``*`` matches one or more unreserved characters (never ``/ : @ ? # \\``); everything else
    is compared exactly (RFC 6749 §3.1.2.3 asks for simple string comparison)."""
    return re.compile(_WILDCARD.join(re.escape(part) for part in pattern.split("*")))


def redirect_uri_allowed(uri: str, patterns: Iterable[str]) -> bool:
    if "*" in uri or redirect_pattern_error(uri):
        return False
    return any(compile_redirect_pattern(p).fullmatch(uri) for p in patterns)


def add_query(uri: str, params: Mapping[str, str]) -> str:
    """``uri`` with ``params`` added to its query; RFC 6749 §3.1.2: an existing query component
    "MUST be retained when adding additional query parameters"."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


# --- PKCE (RFC 7636) ------------------------------------------------------------------------
def s256_challenge(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))), without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_matches(verifier: str, challenge: str, method: str) -> bool:
    """RFC 7636 §4.6, compared in constant time."""
    if not PKCE_RE.fullmatch(verifier):
        return False
    expected = s256_challenge(verifier) if method == "S256" else verifier
    return hmac.compare_digest(expected.encode(), challenge.encode())


# --- parameters and requests --------------------------------------------------------------
def single_param(params: Mapping[str, list[str]], name: str) -> str | None:
    """One parameter value; RFC 6749 §3.1/§3.2: parameters sent without a value are treated as
    omitted, and a parameter must not be included more than once."""
    values = [v for v in params.get(name, []) if v != ""]
    if len(values) > 1:
        raise OAuthError("invalid_request", f"The {name} parameter is repeated")
    return values[0] if values else None


def normalize_scope(scope: str | None, default: str) -> str:
    """RFC 6749 §3.3: space-delimited, order-free; absent means the server's default."""
    if scope is None or not scope.strip():
        return default
    tokens = scope.split(" ")
    if any(not _SCOPE_TOKEN_RE.fullmatch(t) for t in tokens):
        raise OAuthError("invalid_scope", "The scope parameter is malformed (RFC 6749 §3.3)")
    return " ".join(dict.fromkeys(tokens))


def origin_key(address: str, forwarded_for: str | None = None) -> str:
    """The client a consent request counts against: its IP address, or for IPv6 its /64 (one
    host usually holds a whole /64, so per-address caps would not hold there).

    Behind a tunnel every request comes from a loopback address, so for a loopback peer the
    last ``X-Forwarded-For`` entry (the one the tunnel added) names the client. Only for
    loopback peers: anyone local can already pick any 127.x source address, so trusting the
    header there gives nothing away, while a remote peer could forge one key per request."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address[:100]
    if ip.is_loopback and forwarded_for:
        last = forwarded_for.rsplit(",", 1)[-1].strip()
        if last:
            return origin_key(last)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def find_codes(data: bytes | str) -> list[str]:
    """Every string in a request part (query, body of any media type) that has the form of
    an authorization code of this server, also inside JSON strings written with escapes.
    Bounded: at most ``_SCAN_LIMIT`` characters are searched."""
    data = data[:_SCAN_LIMIT]  # before decoding: a refused body may be megabytes long
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    found = _CODE_RE.findall(text)
    if "\\" in text and len(text) <= _JSON_SCAN_LIMIT:
        try:
            decoded = json.loads(text)
        except ValueError:
            return found
        found += _CODE_RE.findall(json.dumps(decoded, ensure_ascii=False))
    return found


# --- how OAuth requests are shown (consent page, request log) -----------------------------
#: Hosts of Okta's admin consoles (the redirect URIs Okta sends users back to).
_OKTA_DOMAINS = ("okta.com", "okta-emea.com", "oktapreview.com", "trexcloud.com", "okta-gov.com")


def client_display_name(redirect_uri: str) -> str:
    """ "Okta" when the browser returns to an Okta admin console, else a neutral name."""
    host = (urlsplit(redirect_uri).hostname or "").lower()
    if any(host == d or host.endswith("." + d) for d in _OKTA_DOMAINS):
        return "Okta"
    return host or "the client"


@dataclass(frozen=True, slots=True)
class OAuthStep:
    id: str
    label: str
    explanation: str


def describe_request(method: str, endpoint: str, grant_type: str | None) -> OAuthStep:
    """Label an OAuth request for the request log, like the Okta steps of SCIM requests."""
    method = method.upper()
    if endpoint == "authorize" and method == "GET":
        return OAuthStep(
            "oauth_authorize",
            "OAuth: authorization request (consent page)",
            "Okta's admin console sent the admin's browser to the authorize URL (\"Authenticate "
            'with …"). The consent page asks to approve; approving sends the browser back to '
            "Okta's redirect URI with a one-time code (RFC 6749 §4.1.1).",
        )
    if endpoint == "authorize":
        return OAuthStep(
            "oauth_consent",
            "OAuth: consent decision",
            "The admin approved or denied on the consent page; the browser is redirected to "
            "Okta with code and state, or with error=access_denied (RFC 6749 §4.1.2).",
        )
    if endpoint == "token" and grant_type == "authorization_code":
        return OAuthStep(
            "oauth_token_code",
            "OAuth: exchange code for tokens",
            "Okta's servers trade the one-time code for an access token and a refresh token, "
            "authenticating with the client id and secret (RFC 6749 §4.1.3).",
        )
    if endpoint == "token" and grant_type == "refresh_token":
        return OAuthStep(
            "oauth_token_refresh",
            "OAuth: refresh the access token",
            "The access token is (nearly) expired, so Okta trades its refresh token for a new "
            "access token; refresh tokens rotate, so it also gets a new refresh token "
            "(RFC 6749 §6).",
        )
    if endpoint == "token" and grant_type == "client_credentials":
        return OAuthStep(
            "oauth_token_client_credentials",
            "OAuth: client credentials token",
            "A script obtained an access token with the client id and secret alone "
            "(RFC 6749 §4.4); Okta itself does not use this grant.",
        )
    if endpoint == "token":
        return OAuthStep(
            "oauth_token",
            "OAuth: token request",
            "A request to the token endpoint (RFC 6749 §3.2).",
        )
    if endpoint == "revoke":
        return OAuthStep(
            "oauth_revoke",
            "OAuth: revoke a token",
            "The client revoked one of its tokens (RFC 7009).",
        )
    return OAuthStep(
        "oauth_metadata",
        "OAuth: server metadata",
        "A client read the authorization server metadata (RFC 8414).",
    )


__all__ = [
    "PKCE_RE",
    "AuthorizeError",
    "OAuthError",
    "OAuthStep",
    "add_query",
    "client_display_name",
    "compile_redirect_pattern",
    "describe_request",
    "error_description",
    "find_codes",
    "normalize_scope",
    "origin_key",
    "pkce_matches",
    "redirect_pattern_error",
    "redirect_uri_allowed",
    "s256_challenge",
    "single_param",
]
