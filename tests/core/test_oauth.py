"""OAuth 2.0 decisions (RFC 6749, RFC 7636, RFC 7009) with an injected clock."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest

from scim_desktop.core.oauth import (
    AuthorizeError,
    Client,
    OAuthError,
    OAuthServer,
    add_query,
    client_display_name,
    pkce_matches,
    redirect_pattern_error,
    redirect_uri_allowed,
    s256_challenge,
)

OKTA_CB = "https://system-admin.okta.com/admin/app/cpc/*/oauth/callback"
REDIRECT = "https://system-admin.okta.com/admin/app/cpc/scimapp_1/oauth/callback"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 Appendix B


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def oauth(clock: Clock) -> OAuthServer:
    return OAuthServer(Client("okta", "s3cret", (OKTA_CB,)), token_ttl=60, clock=clock)


def q(**params: str) -> dict[str, list[str]]:
    return {k: [v] for k, v in params.items()}


def basic(user: str = "okta", password: str = "s3cret") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def authorize(oauth: OAuthServer, **extra: str) -> str:
    params = {"response_type": "code", "client_id": "okta", "redirect_uri": REDIRECT, "state": "st"}
    params.update(extra)
    request = oauth.begin_authorization(q(**params))
    url = oauth.decide(request.id, request.csrf, approve=True)
    query = parse_qs(urlsplit(url).query)
    assert query["state"] == [params["state"]]
    return query["code"][0]


def exchange(oauth: OAuthServer, code: str, **extra: str) -> dict:
    params = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    params.update(extra)
    return oauth.token(q(**params), basic())


# --- redirect URIs (RFC 6749 §3.1.2) --------------------------------------------------------
@pytest.mark.parametrize(
    ("uri", "allowed"),
    [
        (REDIRECT, True),
        ("https://system-admin.okta.com/admin/app/cpc/a.b-c_d~1/oauth/callback", True),
        ("https://system-admin.okta.com/admin/app/cpc//oauth/callback", False),
        ("https://system-admin.okta.com/admin/app/cpc/a/b/oauth/callback", False),
        ("https://system-admin.okta.com/admin/app/cpc/a%2Fb/oauth/callback", False),
        ("https://system-admin.okta.com/admin/app/cpc/x/oauth/callback?x=1", False),
        ("https://system-admin.okta.com/admin/app/cpc/x/oauth/callback#f", False),
        ("http://system-admin.okta.com/admin/app/cpc/x/oauth/callback", False),
        ("https://system-admin.okta.com.evil.com/admin/app/cpc/x/oauth/callback", False),
        ("https://system-admin.okta.com/admin/app/cpc/x\\@evil.com/oauth/callback", False),
        ("https://system-admin.okta.com/admin/app/cpc/*/oauth/callback", False),
    ],
)
def test_redirect_uri_matching(uri: str, allowed: bool) -> None:
    assert redirect_uri_allowed(uri, [OKTA_CB]) is allowed


def test_host_wildcard_stays_under_the_domain() -> None:
    pattern = ["https://*-admin.okta.com/admin/app/generic/oauth20redirect"]
    assert redirect_uri_allowed(
        "https://acme-admin.okta.com/admin/app/generic/oauth20redirect", pattern
    )
    for evil in (
        "https://evil.com/x-admin.okta.com/admin/app/generic/oauth20redirect",
        "https://evil.com@x-admin.okta.com.evil.com/admin/app/generic/oauth20redirect",
        "https://evil.com:1-admin.okta.com/admin/app/generic/oauth20redirect",
    ):
        assert not redirect_uri_allowed(evil, pattern)


def test_redirect_patterns_are_validated() -> None:
    assert redirect_pattern_error("https://a.example/cb") is None
    assert "absolute" in redirect_pattern_error("/cb")
    assert "fragment" in redirect_pattern_error("https://a.example/cb#x")
    assert redirect_pattern_error("https://a.example/c b")


def test_add_query_keeps_the_existing_query() -> None:
    url = add_query("https://a.example/cb?x=1", {"code": "c d", "state": "s&t"})
    assert parse_qs(urlsplit(url).query) == {"x": ["1"], "code": ["c d"], "state": ["s&t"]}


def test_client_display_name() -> None:
    assert client_display_name(REDIRECT) == "Okta"
    assert client_display_name("https://x-admin.oktapreview.com/cb") == "Okta"
    assert client_display_name("http://127.0.0.1:9/cb") == "127.0.0.1"


# --- authorization endpoint (§4.1.1, §4.1.2.1) ----------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        {"response_type": "code", "redirect_uri": REDIRECT},  # no client_id
        {"response_type": "code", "client_id": "other", "redirect_uri": REDIRECT},
        {"response_type": "code", "client_id": "okta"},  # no redirect_uri
        {"response_type": "code", "client_id": "okta", "redirect_uri": "https://evil.example/cb"},
    ],
)
def test_errors_before_the_redirect_uri_is_trusted_are_not_redirected(oauth, params) -> None:
    with pytest.raises(AuthorizeError) as info:
        oauth.begin_authorization(q(**params))
    assert info.value.redirect_uri is None and info.value.error == "invalid_request"


def test_repeated_redirect_uri_is_not_redirected(oauth) -> None:
    params = q(response_type="code", client_id="okta")
    params["redirect_uri"] = [REDIRECT, "https://evil.example/cb"]
    with pytest.raises(AuthorizeError) as info:
        oauth.begin_authorization(params)
    assert info.value.redirect_uri is None


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": ""}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"code_challenge": "a" * 43, "code_challenge_method": "S512"}, "invalid_request"),
        ({"code_challenge_method": "S256"}, "invalid_request"),
        ({"scope": 'bad"scope'}, "invalid_scope"),
    ],
)
def test_later_errors_go_back_to_the_client_with_state(oauth, extra, error) -> None:
    params = {"response_type": "code", "client_id": "okta", "redirect_uri": REDIRECT, "state": "S1"}
    params.update(extra)
    with pytest.raises(AuthorizeError) as info:
        oauth.begin_authorization(q(**params))
    assert info.value.error == error and info.value.redirect_uri == REDIRECT
    back = parse_qs(urlsplit(info.value.redirect_url()).query)
    assert back["error"] == [error] and back["state"] == ["S1"]


def test_deny_redirects_with_access_denied(oauth) -> None:
    request = oauth.begin_authorization(
        q(response_type="code", client_id="okta", redirect_uri=REDIRECT, state="zz")
    )
    url = oauth.decide(request.id, request.csrf, approve=False)
    assert url.startswith(REDIRECT + "?")
    assert parse_qs(urlsplit(url).query) == {
        "error": ["access_denied"],
        "error_description": ["The user denied the request"],
        "state": ["zz"],
    }


def test_decision_needs_the_csrf_token_and_is_single_use(oauth) -> None:
    request = oauth.begin_authorization(
        q(response_type="code", client_id="okta", redirect_uri=REDIRECT)
    )
    with pytest.raises(AuthorizeError, match="CSRF"):
        oauth.decide(request.id, "forged", approve=True)
    oauth.decide(request.id, request.csrf, approve=True)
    with pytest.raises(AuthorizeError, match="unknown or expired"):
        oauth.decide(request.id, request.csrf, approve=True)


def test_consent_expires(oauth, clock) -> None:
    request = oauth.begin_authorization(
        q(response_type="code", client_id="okta", redirect_uri=REDIRECT)
    )
    clock.now += 601
    with pytest.raises(AuthorizeError, match="expired"):
        oauth.decide(request.id, request.csrf, approve=True)


def test_default_scope_and_no_state(oauth) -> None:
    request = oauth.begin_authorization(
        q(response_type="code", client_id="okta", redirect_uri=REDIRECT)
    )
    assert request.scope == "scim" and request.state is None
    url = oauth.decide(request.id, request.csrf, approve=True)
    assert set(parse_qs(urlsplit(url).query)) == {"code"}


# --- token endpoint --------------------------------------------------------------------------
def test_code_exchange_refresh_rotation_and_expiry(oauth, clock) -> None:
    tokens = exchange(oauth, authorize(oauth))
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 60
    assert tokens["scope"] == "scim"
    assert oauth.check_access(tokens["access_token"]).ok
    clock.now += 30
    refreshed = oauth.token(
        q(
            grant_type="refresh_token",
            refresh_token=tokens["refresh_token"],
            client_id="okta",
            client_secret="s3cret",
        ),
        None,
    )
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    # The old access token stays valid until it expires; the old refresh token is spent
    # (presenting it again is a replay: see test_oauth_hardening.py).
    assert oauth.check_access(tokens["access_token"]).ok
    clock.now += 30
    expired = oauth.check_access(tokens["access_token"])
    assert not expired.ok and expired.reason == "The access token expired"
    assert oauth.check_access(refreshed["access_token"]).ok
    clock.now += 31
    assert not oauth.check_access(refreshed["access_token"]).ok
    statuses = sorted(i.status for i in oauth.tokens())
    assert statuses == ["active", "expired", "expired", "rotated"]


def test_code_is_single_use_and_reuse_revokes_its_tokens(oauth) -> None:
    code = authorize(oauth)
    tokens = exchange(oauth, code)
    with pytest.raises(OAuthError) as info:
        exchange(oauth, code)
    assert info.value.error == "invalid_grant" and "already used" in info.value.description
    check = oauth.check_access(tokens["access_token"])
    assert check.reason == "The access token was revoked"
    assert check.revoked_reason == "its authorization code was used again (RFC 6749 §4.1.2)"
    with pytest.raises(OAuthError, match="revoked"):
        oauth.token(q(grant_type="refresh_token", refresh_token=tokens["refresh_token"]), basic())


def test_code_expires(oauth, clock) -> None:
    code = authorize(oauth)
    clock.now += 121
    with pytest.raises(OAuthError, match="expired") as info:
        exchange(oauth, code)
    assert info.value.error == "invalid_grant"


def test_redirect_uri_must_match(oauth) -> None:
    code = authorize(oauth)
    other = REDIRECT.replace("scimapp_1", "scimapp_2")
    with pytest.raises(OAuthError) as info:
        exchange(oauth, code, redirect_uri=other)
    assert info.value.error == "invalid_grant"
    code = authorize(oauth)
    with pytest.raises(OAuthError) as info:
        oauth.token(q(grant_type="authorization_code", code=code), basic())
    assert info.value.error == "invalid_request"


@pytest.mark.parametrize("method", ["S256", "plain"])
def test_pkce(oauth, method) -> None:
    challenge = s256_challenge(VERIFIER) if method == "S256" else VERIFIER
    code = authorize(oauth, code_challenge=challenge, code_challenge_method=method)
    with pytest.raises(OAuthError) as info:
        exchange(oauth, code, code_verifier=VERIFIER[:-1] + "x")
    assert info.value.error == "invalid_grant"
    code = authorize(oauth, code_challenge=challenge, code_challenge_method=method)
    with pytest.raises(OAuthError, match="code_verifier is required"):
        exchange(oauth, code)
    code = authorize(oauth, code_challenge=challenge, code_challenge_method=method)
    assert "access_token" in exchange(oauth, code, code_verifier=VERIFIER)


def test_pkce_known_answer() -> None:
    # RFC 7636 Appendix B.
    assert s256_challenge(VERIFIER) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert pkce_matches(VERIFIER, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "S256")
    assert not pkce_matches("short", "short", "plain")


def test_verifier_without_challenge_is_refused(oauth) -> None:
    with pytest.raises(OAuthError, match="no PKCE"):
        exchange(oauth, authorize(oauth), code_verifier=VERIFIER)


@pytest.mark.parametrize(
    ("authorization", "form", "error", "status", "challenge"),
    [
        (basic(password="wrong"), {}, "invalid_client", 401, True),
        (basic(user="other"), {}, "invalid_client", 401, True),
        ("Basic !!!", {}, "invalid_client", 401, True),
        (None, {"client_id": "okta", "client_secret": "wrong"}, "invalid_client", 400, False),
        (None, {"client_id": "okta"}, "invalid_client", 401, True),
        (None, {}, "invalid_client", 401, True),
        (basic(), {"client_secret": "s3cret"}, "invalid_request", 400, False),
    ],
)
def test_client_authentication(oauth, authorization, form, error, status, challenge) -> None:
    with pytest.raises(OAuthError) as info:
        oauth.token(q(grant_type="client_credentials", **form), authorization)
    assert (info.value.error, info.value.status) == (error, status)
    assert ("WWW-Authenticate" in info.value.headers) is challenge


def test_basic_credentials_are_form_urlencoded(clock) -> None:
    # RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
    server = OAuthServer(Client("my client", "p@ss:word", (OKTA_CB,)), clock=clock)
    header = "Basic " + base64.b64encode(b"my+client:p%40ss%3Aword").decode()
    assert "access_token" in server.token(q(grant_type="client_credentials"), header)


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"grant_type": "authorization_code"}, "invalid_request"),
        (
            {"grant_type": "authorization_code", "code": "nope", "redirect_uri": REDIRECT},
            "invalid_grant",
        ),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "nope"}, "invalid_grant"),
    ],
)
def test_token_request_errors(oauth, params, error) -> None:
    with pytest.raises(OAuthError) as info:
        oauth.token(q(**params), basic())
    assert info.value.error == error and info.value.status == 400


def test_repeated_parameters_are_invalid(oauth) -> None:
    with pytest.raises(OAuthError, match="repeated") as info:
        oauth.token({"grant_type": ["client_credentials", "client_credentials"]}, basic())
    assert info.value.error == "invalid_request"


def test_client_credentials_has_no_refresh_token(oauth) -> None:
    tokens = oauth.token(q(grant_type="client_credentials", scope="scim"), basic())
    assert "refresh_token" not in tokens and oauth.check_access(tokens["access_token"]).ok


def test_refresh_cannot_widen_the_scope(oauth) -> None:
    tokens = exchange(oauth, authorize(oauth, scope="scim read"))
    with pytest.raises(OAuthError) as info:
        oauth.token(
            q(grant_type="refresh_token", refresh_token=tokens["refresh_token"], scope="admin"),
            basic(),
        )
    assert info.value.error == "invalid_scope"
    narrowed = oauth.token(
        q(grant_type="refresh_token", refresh_token=tokens["refresh_token"], scope="read"), basic()
    )
    assert narrowed["scope"] == "read"


# --- revocation (RFC 7009) and listing --------------------------------------------------------
def test_revoking_a_refresh_token_ends_its_access_tokens(oauth) -> None:
    tokens = exchange(oauth, authorize(oauth))
    other = exchange(oauth, authorize(oauth))
    oauth.revoke(q(token=tokens["refresh_token"], token_type_hint="refresh_token"), basic())
    assert not oauth.check_access(tokens["access_token"]).ok
    assert oauth.check_access(other["access_token"]).ok
    # §2.2: an unknown token is not an error.
    oauth.revoke(q(token="unknown"), basic())
    with pytest.raises(OAuthError) as info:
        oauth.revoke(q(token=other["access_token"]), basic(password="x"))
    assert info.value.error == "invalid_client"


def test_revoke_by_id_and_all(oauth) -> None:
    tokens = exchange(oauth, authorize(oauth))
    access_id = next(i.id for i in oauth.tokens() if i.kind == "access")
    before = oauth.revision
    assert oauth.revoke_id(access_id) is True and oauth.revision > before
    assert oauth.revoke_id(access_id) is False
    assert not oauth.check_access(tokens["access_token"]).ok
    assert oauth.revoke_all() == 1  # the refresh token
    assert {i.status for i in oauth.tokens()} == {"revoked"}


def test_state_round_trip_keeps_hashes_only(oauth, clock) -> None:
    tokens = exchange(oauth, authorize(oauth))
    state = oauth.export_state()
    assert tokens["access_token"] not in repr(state) and tokens["refresh_token"] not in repr(state)
    again = OAuthServer(Client("okta", "s3cret", (OKTA_CB,)), token_ttl=60, clock=clock)
    assert again.load_state(state) == 2
    assert again.check_access(tokens["access_token"]).ok
    assert "refresh_token" in again.token(
        q(grant_type="refresh_token", refresh_token=tokens["refresh_token"]), basic()
    )
    other_client = OAuthServer(Client("someone", "x", (OKTA_CB,)), clock=clock)
    assert other_client.load_state(state) == 0


def test_dead_tokens_are_forgotten_after_a_day(oauth, clock) -> None:
    exchange(oauth, authorize(oauth))
    clock.now += 61
    assert len(oauth.tokens()) == 2
    clock.now += 24 * 3600
    assert [i.kind for i in oauth.tokens()] == ["refresh"]  # refresh tokens do not expire
