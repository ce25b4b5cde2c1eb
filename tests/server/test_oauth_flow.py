"""OAuth 2.0 mode end to end over real sockets: Okta's authorization-code flow, refresh,
expiry, revocation, PKCE and every error path a client can hit (RFC 6749, 7636, 7009)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from scim_desktop.config import AuthConfig, OAuthConfig, ServerConfig
from scim_desktop.core.oauth import s256_challenge
from scim_desktop.server.events import RequestRecord
from scim_desktop.server.runner import ServerThread
from tests.conftest import RecordingSink
from tests.scim_client import ScimClient
from tests.server.test_okta_flows import okta_create_body

CLIENT_ID = "okta-scim-client"
SECRET = "s3cret-Value_0123456789"
REDIRECT = "https://system-admin.okta.com/admin/app/cpc/scimdesktop_1/oauth/callback"
LOCAL_REDIRECT = "http://127.0.0.1:9/callback?keep=1"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    raw: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.raw)

    @property
    def text(self) -> str:
        return self.raw.decode()


class Http:
    """Plain HTTP against the server's origin (a browser or Okta's back end)."""

    def __init__(self, server: ServerThread) -> None:
        self.port = server.port

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        body = urlencode(form).encode() if form is not None else None
        all_headers = dict(headers or {})
        if body is not None:
            all_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        try:
            conn.request(method, path, body=body, headers=all_headers)
            resp = conn.getresponse()
            return Reply(resp.status, resp.headers, resp.read())
        finally:
            conn.close()


def basic(client_id: str = CLIENT_ID, secret: str = SECRET) -> dict[str, str]:
    creds = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {creds}"}


def make_server(db_path: Path, sink: RecordingSink, *, ttl: int = 3600) -> ServerThread:
    oauth = OAuthConfig(
        client_id=CLIENT_ID,
        client_secret=SECRET,
        redirect_uris=(
            "https://system-admin.okta.com/admin/app/cpc/*/oauth/callback",
            LOCAL_REDIRECT,
        ),
        token_ttl=ttl,
        state_path=db_path.with_name("scim.oauth.json"),
    )
    config = ServerConfig(
        host="127.0.0.1", port=0, db_path=db_path, auth=AuthConfig("oauth", oauth=oauth)
    )
    server = ServerThread(config, sink)
    server.start()
    return server


def consent(web: Http, **params: str) -> Reply:
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "state": "okta-state-42",
        "scope": "scim",
    }
    query.update(params)
    query = {k: v for k, v in query.items() if v is not None}
    return web.request("GET", "/oauth/authorize?" + urlencode(query))


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, page
    return match.group(1)


def approve(web: Http, decision: str = "approve", **params: str) -> Reply:
    page = consent(web, **params)
    assert page.status == 200, page.text
    return web.request(
        "POST",
        "/oauth/authorize",
        {
            "request": hidden(page.text, "request"),
            "csrf": hidden(page.text, "csrf"),
            "decision": decision,
        },
    )


def get_code(web: Http, **params: str) -> str:
    reply = approve(web, **params)
    assert reply.status == 303, reply.text
    location = reply.headers["Location"]
    redirect = params.get("redirect_uri", REDIRECT)
    assert location.startswith(redirect.split("?")[0] + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [params.get("state", "okta-state-42")]
    return query["code"][0]


def token(web: Http, form: dict[str, str], headers: dict[str, str] | None = None) -> Reply:
    return web.request("POST", "/oauth/token", form, headers)


def exchange(web: Http, code: str, *, use_basic: bool = True, **extra: str) -> Reply:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, **extra}
    if use_basic:
        return token(web, form, basic())
    return token(web, {**form, "client_id": CLIENT_ID, "client_secret": SECRET})


def scim(server: ServerThread, access_token: str) -> ScimClient:
    return ScimClient(server.base_url, token=access_token)


def assert_oauth_error(reply: Reply, status: int, error: str) -> dict:
    assert reply.status == status, reply.text
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.headers["Cache-Control"] == "no-store"
    body = reply.json
    assert body["error"] == error and body["error_description"]
    # RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
    assert re.fullmatch(r"[\x20\x21\x23-\x5b\x5d-\x7e]+", body["error_description"])
    return body


# --- the flow Okta runs ---------------------------------------------------------------------
def test_okta_authorization_code_flow_end_to_end(oauth_server, web, sink) -> None:
    # 1. The admin's browser opens the authorize URL: a small consent page.
    page = consent(web)
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "Allow Okta to provision" in page.text and CLIENT_ID in page.text
    assert "system-admin.okta.com" in page.text and ">scim<" in page.text
    assert 'value="approve"' in page.text and 'value="deny"' in page.text
    # 2. Approve: back to Okta with code and state.
    code = get_code(web)
    # 3. Okta's back end exchanges the code, authenticating with HTTP Basic.
    reply = exchange(web, code)
    assert reply.status == 200, reply.text
    assert reply.headers["Cache-Control"] == "no-store" and reply.headers["Pragma"] == "no-cache"
    tokens = reply.json
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    assert tokens["access_token"] and tokens["refresh_token"] and tokens["scope"] == "scim"
    # 4. SCIM calls with the access token.
    client = scim(oauth_server, tokens["access_token"])
    assert client.get("/Users?startIndex=1&count=2").status == 200
    assert client.post("/Users", okta_create_body("oauth@example.com")).status == 201
    client.close()
    # 5. Refresh (form authentication this time): a new access and refresh token.
    refreshed = token(
        web,
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
        },
    )
    assert refreshed.status == 200, refreshed.text
    new = refreshed.json
    assert new["access_token"] != tokens["access_token"]
    assert new["refresh_token"] != tokens["refresh_token"]
    # The old access token works until it expires (Okta may have requests in flight).
    old_client = scim(oauth_server, tokens["access_token"])
    assert old_client.get("/Users").status == 200
    old_client.close()
    # The old refresh token is spent (rotation), but a prompt retry of the same refresh (its
    # answer lost) gets the same answer; a later replay revokes the whole family
    # (test_oauth_hardening.py).
    retry = token(
        web, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, basic()
    )
    assert retry.status == 200 and retry.json["refresh_token"] == new["refresh_token"]
    new_client = scim(oauth_server, new["access_token"])
    assert new_client.get("/Users").status == 200
    # 6. Revoke (RFC 7009): the token stops working with invalid_token.
    revoked = web.request("POST", "/oauth/revoke", {"token": new["access_token"]}, basic())
    assert revoked.status == 200 and revoked.raw == b""
    resp = new_client.get("/Users")
    assert resp.status == 401
    challenge = resp.header("WWW-Authenticate")
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
    assert resp.body["detail"].startswith("The access token was revoked")
    new_client.close()
    # Every step is in the request log, labelled, with no secret in it.
    records = [e for e in sink.events if isinstance(e, RequestRecord)]
    steps = [r.okta_step for r in records if r.path.startswith("/oauth")]
    assert steps[:4] == ["oauth_authorize", "oauth_authorize", "oauth_consent", "oauth_token_code"]
    assert "oauth_token_refresh" in steps and "oauth_revoke" in steps
    dump = json.dumps([r.to_dict() for r in records])
    for secret in (
        code,
        SECRET,
        tokens["access_token"],
        tokens["refresh_token"],
        new["access_token"],
        new["refresh_token"],
    ):
        assert secret not in dump
    consent_record = next(r for r in records if r.okta_step == "oauth_consent")
    assert "code=***" in consent_record.response_headers["Location"]
    assert "csrf=***" in consent_record.request_body
    page_record = records[0]
    assert 'name="csrf" value="***"' in page_record.response_body


def test_scim_needs_an_access_token(oauth_server) -> None:
    for headers in ({}, {"Authorization": f"Bearer {SECRET}"}, basic()):
        c = ScimClient(oauth_server.base_url, headers=headers)
        resp = c.get("/Users")
        c.close()
        assert resp.status == 401
        challenge = resp.header("WWW-Authenticate")
        assert challenge.startswith("Bearer realm=")
        # RFC 6750 §3.1: no error code when no token was sent.
        assert ('error="invalid_token"' in challenge) is headers.get(
            "Authorization", ""
        ).startswith("Bearer")


def test_service_provider_config_advertises_oauth(oauth_server, web) -> None:
    reply = web.request("GET", "/.well-known/oauth-authorization-server")
    meta = reply.json
    origin = f"http://127.0.0.1:{oauth_server.port}"
    assert meta["issuer"] == origin and meta["token_endpoint"] == f"{origin}/oauth/token"
    assert meta["code_challenge_methods_supported"] == ["S256", "plain"]
    tokens = token(web, {"grant_type": "client_credentials"}, basic()).json
    c = scim(oauth_server, tokens["access_token"])
    spc = c.get("/ServiceProviderConfig").body
    c.close()
    assert spc["authenticationSchemes"][0]["type"] == "oauth2"


def test_access_token_expires(db_path: Path, sink) -> None:
    server = make_server(db_path, sink, ttl=1)
    try:
        web = Http(server)
        tokens = exchange(web, get_code(web)).json
        assert tokens["expires_in"] == 1
        client = scim(server, tokens["access_token"])
        assert client.get("/Users").status == 200
        time.sleep(1.1)
        resp = client.get("/Users")
        assert resp.status == 401 and 'error="invalid_token"' in resp.header("WWW-Authenticate")
        assert "expired" in resp.body["detail"] and "refresh" in resp.body["detail"]
        client.close()
        fresh = token(
            web, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, basic()
        )
        client = scim(server, fresh.json["access_token"])
        assert client.get("/Users").status == 200
        client.close()
    finally:
        server.stop()


def test_tokens_survive_a_restart(db_path: Path, sink) -> None:
    server = make_server(db_path, sink)
    web = Http(server)
    tokens = exchange(web, get_code(web)).json
    server.stop()
    state_file = db_path.with_name("scim.oauth.json")
    assert oct(state_file.stat().st_mode & 0o777) == "0o600"
    stored = state_file.read_text()
    assert tokens["access_token"] not in stored and tokens["refresh_token"] not in stored
    server = make_server(db_path, sink)
    try:
        web = Http(server)
        client = scim(server, tokens["access_token"])
        assert client.get("/Users").status == 200
        client.close()
        again = token(
            web, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, basic()
        )
        assert again.status == 200
    finally:
        server.stop()


# --- PKCE (RFC 7636) ---------------------------------------------------------------------------
def test_pkce_s256(web) -> None:
    challenge = s256_challenge(VERIFIER)
    code = get_code(web, code_challenge=challenge, code_challenge_method="S256")
    wrong = exchange(web, code, code_verifier="x" * 43)
    assert_oauth_error(wrong, 400, "invalid_grant")
    code = get_code(web, code_challenge=challenge, code_challenge_method="S256")
    assert exchange(web, code, code_verifier=VERIFIER).status == 200


# --- errors --------------------------------------------------------------------------------------
def test_wrong_redirect_uri_shows_an_error_page_and_never_redirects(web) -> None:
    page = consent(web, redirect_uri="https://evil.example/steal")
    assert page.status == 400 and "Location" not in page.headers
    assert page.headers["Content-Type"].startswith("text/html")
    assert "not allowed" in page.text and "evil.example" in page.text
    unknown = consent(web, client_id="someone-else")
    assert unknown.status == 400 and "Location" not in unknown.headers


def test_redirectable_errors_go_back_with_state(web) -> None:
    reply = consent(web, response_type="token", redirect_uri=LOCAL_REDIRECT)
    assert reply.status == 302
    location = reply.headers["Location"]
    assert location.startswith("http://127.0.0.1:9/callback?")
    assert parse_qs(urlsplit(location).query) == {
        "keep": ["1"],
        "error": ["unsupported_response_type"],
        "error_description": ["response_type 'token' is not supported; use code"],
        "state": ["okta-state-42"],
    }


def test_deny(web) -> None:
    reply = approve(web, decision="deny")
    assert reply.status == 303
    query = parse_qs(urlsplit(reply.headers["Location"]).query)
    assert query["error"] == ["access_denied"] and query["state"] == ["okta-state-42"]


def test_forged_consent_is_refused(web) -> None:
    page = consent(web)
    reply = web.request(
        "POST",
        "/oauth/authorize",
        {"request": hidden(page.text, "request"), "csrf": "forged", "decision": "approve"},
    )
    assert reply.status == 400 and "Location" not in reply.headers and "CSRF" in reply.text


def test_token_redirect_uri_must_match(web) -> None:
    code = get_code(web)
    reply = exchange(web, code, redirect_uri=REDIRECT.replace("scimdesktop_1", "other_1"))
    assert_oauth_error(reply, 400, "invalid_grant")


def test_code_reuse_is_invalid_grant_and_revokes(oauth_server, web) -> None:
    code = get_code(web)
    first = exchange(web, code).json
    again = exchange(web, code)
    body = assert_oauth_error(again, 400, "invalid_grant")
    assert "already used" in body["error_description"]
    client = scim(oauth_server, first["access_token"])
    assert client.get("/Users").status == 401
    client.close()


def test_wrong_client_secret(web) -> None:
    code = get_code(web)
    reply = token(
        web,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        basic(secret="wrong"),
    )
    assert_oauth_error(reply, 401, "invalid_client")
    assert reply.headers["WWW-Authenticate"].startswith("Basic ")
    form = token(
        web,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": CLIENT_ID,
            "client_secret": "wrong",
        },
    )
    # Form authentication: 400 (no Authorization header was used, RFC 6749 §5.2).
    assert_oauth_error(form, 400, "invalid_client")
    # The first failed attempt spent the code (RFC 6749 §10.5): authorize again.
    spent = assert_oauth_error(exchange(web, code, use_basic=False), 400, "invalid_grant")
    assert "can no longer be used" in spent["error_description"]
    assert exchange(web, get_code(web), use_basic=False).status == 200


def test_client_credentials_for_scripts(oauth_server, web) -> None:
    reply = token(web, {"grant_type": "client_credentials"}, basic())
    assert reply.status == 200
    tokens = reply.json
    assert "refresh_token" not in tokens
    client = scim(oauth_server, tokens["access_token"])
    assert client.get("/Groups").status == 200
    client.close()


@pytest.mark.parametrize(
    ("form", "content_type", "status", "error"),
    [
        (
            {"grant_type": "password", "username": "u", "password": "p"},
            None,
            400,
            "unsupported_grant_type",
        ),
        ({}, None, 400, "invalid_request"),
        ({"grant_type": "client_credentials"}, "application/json", 400, "invalid_request"),
    ],
)
def test_token_endpoint_errors(web, form, content_type, status, error) -> None:
    headers = basic()
    if content_type:
        headers["Content-Type"] = content_type
    assert_oauth_error(token(web, form, headers), status, error)


def test_token_endpoint_refuses_get(web) -> None:
    reply = web.request("GET", "/oauth/token")
    assert_oauth_error(reply, 405, "invalid_request")


def test_window_lists_and_revokes_tokens(oauth_server, web) -> None:
    tokens = exchange(web, get_code(web)).json
    infos = oauth_server.oauth_tokens().result(5)
    assert sorted(i.kind for i in infos) == ["access", "refresh"]
    assert all(i.status == "active" and i.client_id == CLIENT_ID for i in infos)
    access = next(i for i in infos if i.kind == "access")
    assert oauth_server.revoke_token(access.id).result(5) is True
    client = scim(oauth_server, tokens["access_token"])
    assert client.get("/Users").status == 401
    client.close()
    assert oauth_server.revoke_all_tokens().result(5) == 1
    statuses = {i.status for i in oauth_server.oauth_tokens().result(5)}
    assert statuses == {"revoked"}
    assert oauth_server.oauth_client_id == CLIENT_ID and oauth_server.oauth_client_secret == SECRET
    assert oauth_server.oauth_token_url == f"http://127.0.0.1:{oauth_server.port}/oauth/token"
    assert oauth_server.oauth_authorize_url.endswith("/oauth/authorize")


def test_corrupt_token_file_is_moved_aside(db_path: Path, sink) -> None:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    state = db_path.with_name("scim.oauth.json")
    state.write_text("{not json")
    server = make_server(db_path, sink)
    try:
        assert any("moved" in w for w in server.warnings)
        moved = list(state.parent.glob("scim.oauth.json.corrupt-*"))
        assert len(moved) == 1 and moved[0].read_text() == "{not json"
        web = Http(server)
        assert exchange(web, get_code(web)).status == 200
        assert json.loads(state.read_text())["client_id"] == CLIENT_ID
        assert oct(os.stat(state).st_mode & 0o777) == "0o600"
    finally:
        server.stop()
