"""OAuth hardening, pure: refresh token replay revokes the token family (RFC 9700 §4.14.2)
while a prompt retry gets its answer again; a refused token request spends the code it names
(RFC 6749 §10.5); consent requests cannot be evicted by a flood of authorization requests."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from scim_desktop.core.oauth import (
    MAX_PENDING,
    MAX_PENDING_PER_ORIGIN,
    PENDING_TTL,
    PENDING_TTL_BUSY,
    REFRESH_RETRY_WINDOW,
    AuthorizationRequest,
    AuthorizeError,
    Client,
    OAuthError,
    OAuthServer,
    find_codes,
    origin_key,
    s256_challenge,
)
from tests.core.test_oauth import OKTA_CB, REDIRECT, VERIFIER, Clock, authorize, basic, exchange, q


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def oauth(clock: Clock) -> OAuthServer:
    return OAuthServer(Client("okta", "s3cret", (OKTA_CB,)), token_ttl=600, clock=clock)


def refresh(oauth: OAuthServer, refresh_token: str, **extra: str) -> dict:
    return oauth.token(q(grant_type="refresh_token", refresh_token=refresh_token, **extra), basic())


def refused(oauth: OAuthServer, refresh_token: str) -> OAuthError:
    with pytest.raises(OAuthError) as info:
        refresh(oauth, refresh_token)
    assert info.value.error == "invalid_grant" and info.value.status == 400
    return info.value


# --- refresh token replay (RFC 9700 §4.14.2) ----------------------------------------------
def test_a_replayed_refresh_token_revokes_its_whole_family(oauth, clock) -> None:
    first = exchange(oauth, authorize(oauth))
    other = exchange(oauth, authorize(oauth))  # another authorization: not of the family
    clock.now += 5
    second = refresh(oauth, first["refresh_token"])
    clock.now += 5
    third = refresh(oauth, second["refresh_token"])  # the client carries on with the new one
    before = oauth.revision
    clock.now += 5
    error = refused(oauth, first["refresh_token"])  # the first one, replayed
    assert "already used" in error.description and "RFC 9700 section" in error.description
    # Active: the three access tokens (each valid until it expires) and the newest refresh.
    assert "4 were active" in error.description
    assert oauth.revision > before  # so the server layer saves the revocation
    # Every token descended from the authorization code is dead: the current ones too.
    for access in (first, second, third):
        check = oauth.check_access(access["access_token"])
        assert not check.ok and check.reason == "The access token was revoked"
        assert check.revoked_reason.startswith("a rotated refresh token of its authorization")
    assert "revoked" in refused(oauth, third["refresh_token"]).description
    assert oauth.check_access(other["access_token"]).ok
    assert "access_token" in refresh(oauth, other["refresh_token"])
    # The window's list says which and why.
    family = [i for i in oauth.tokens() if i.reason]
    assert len(family) == 6 and {i.status for i in family} == {"revoked"}
    assert all("RFC 9700 §4.14.2" in i.reason for i in family)


def test_a_replay_after_the_retry_window_revokes_too(oauth, clock) -> None:
    first = exchange(oauth, authorize(oauth))
    second = refresh(oauth, first["refresh_token"])
    clock.now += REFRESH_RETRY_WINDOW + 1
    refused(oauth, first["refresh_token"])
    assert not oauth.check_access(second["access_token"]).ok
    assert "revoked" in refused(oauth, second["refresh_token"]).description


def test_a_retry_whose_answer_was_lost_gets_the_same_tokens(oauth, clock) -> None:
    first = exchange(oauth, authorize(oauth))
    lost = refresh(oauth, first["refresh_token"])
    clock.now += 10
    # Two workers refreshing at once, or a retry after a timeout: the same answer, so no
    # second branch of the family comes into being.
    retry = refresh(oauth, first["refresh_token"])
    assert retry["access_token"] == lost["access_token"]
    assert retry["refresh_token"] == lost["refresh_token"]
    assert retry["expires_in"] == 600 - 10 and retry["scope"] == lost["scope"]
    assert len(oauth.tokens()) == 4  # the code's pair and one refreshed pair
    # Using the new access token does not end the window (a second worker may be late)...
    assert oauth.check_access(lost["access_token"]).ok
    assert refresh(oauth, first["refresh_token"])["refresh_token"] == lost["refresh_token"]
    # ... using the new refresh token does: the answer clearly arrived, so the old refresh
    # token coming back now is a replay.
    newest = refresh(oauth, lost["refresh_token"])
    refused(oauth, first["refresh_token"])
    assert not oauth.check_access(newest["access_token"]).ok


def test_a_retry_must_be_the_same_request(oauth) -> None:
    first = exchange(oauth, authorize(oauth, scope="scim read"))
    narrowed = refresh(oauth, first["refresh_token"], scope="read")
    assert narrowed["scope"] == "read"
    with pytest.raises(OAuthError) as info:
        refresh(oauth, first["refresh_token"])  # not the request that rotated it
    assert info.value.error == "invalid_grant"
    assert not oauth.check_access(narrowed["access_token"]).ok


def test_a_revoked_successor_ends_the_retry_window(oauth) -> None:
    first = exchange(oauth, authorize(oauth))
    second = refresh(oauth, first["refresh_token"])
    access_id = next(
        i.id for i in oauth.tokens() if i.kind == "access" and i.grant == "refresh_token"
    )
    assert oauth.revoke_id(access_id)
    refused(oauth, first["refresh_token"])  # the revoked token is not handed out again
    assert "revoked" in refused(oauth, second["refresh_token"]).description


def test_retry_answers_live_in_memory_only(oauth, clock) -> None:
    first = exchange(oauth, authorize(oauth))
    second = refresh(oauth, first["refresh_token"])
    state = oauth.export_state()
    dump = json.dumps(state)
    for value in (*first.values(), *second.values()):
        if isinstance(value, str) and value.startswith(("at_", "rt_")):
            assert value not in dump
    # The lineage is kept: the refreshed pair names the refresh token it was issued for.
    parents = {t["kind"]: t["parent"] for t in state if t["grant"] == "refresh_token"}
    rotated = next(t["id"] for t in state if t["rotated_at"] is not None)
    assert parents == {"access": rotated, "refresh": rotated}
    # After a restart the answer is gone: a retry is then a replay.
    again = OAuthServer(Client("okta", "s3cret", (OKTA_CB,)), token_ttl=600, clock=clock)
    assert again.load_state(state) == 4
    refused(again, first["refresh_token"])
    assert not again.check_access(second["access_token"]).ok
    reasons = {t["revoked_reason"] for t in again.export_state()}
    assert any("RFC 9700" in r for r in reasons)
    # ... and the reasons survive the next restart.
    third = OAuthServer(Client("okta", "s3cret", (OKTA_CB,)), token_ttl=600, clock=clock)
    third.load_state(again.export_state())
    assert all(i.status == "revoked" and "RFC 9700" in i.reason for i in third.tokens())


def test_answers_are_forgotten_after_the_window(oauth, clock) -> None:
    first = exchange(oauth, authorize(oauth))
    second = refresh(oauth, first["refresh_token"])
    assert len(oauth._answers) == 1
    clock.now += REFRESH_RETRY_WINDOW + 1
    assert oauth.check_access(second["access_token"]).ok  # SCIM traffic alone prunes too
    assert oauth._answers == {}


# --- a refused token request spends the code (RFC 6749 §10.5) -------------------------------
CHALLENGE = s256_challenge(VERIFIER)


@pytest.mark.parametrize(
    ("extra", "authorization", "error"),
    [
        ({}, basic(password="wrong"), "invalid_client"),
        ({"redirect_uri": REDIRECT.replace("scimapp_1", "other")}, None, "invalid_grant"),
        ({"redirect_uri": ""}, None, "invalid_request"),
        ({"code_verifier": "x" * 43}, None, "invalid_grant"),
        ({"grant_type": "password"}, None, "unsupported_grant_type"),
        ({"grant_type": "client_credentials", "scope": "bad\\scope"}, None, "invalid_scope"),
    ],
)
def test_a_refused_token_request_spends_its_code(oauth, extra, authorization, error) -> None:
    code = authorize(oauth, code_challenge=CHALLENGE, code_challenge_method="S256")
    params = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    params.update(extra)
    with pytest.raises(OAuthError) as info:
        oauth.token(q(**params), authorization or basic())
    assert info.value.error == error
    with pytest.raises(OAuthError) as info:
        exchange(oauth, code, code_verifier=VERIFIER)
    assert info.value.error == "invalid_grant"
    assert "can no longer be used" in info.value.description
    assert "refused" in info.value.description
    assert "RFC 6749 section 10.5" in info.value.description
    assert oauth.tokens() == []


def test_a_code_among_repeated_parameters_is_spent(oauth) -> None:
    code = authorize(oauth)
    with pytest.raises(OAuthError, match="repeated"):
        oauth.token({"code": [code, "ac_other"], "grant_type": ["authorization_code"]}, basic())
    with pytest.raises(OAuthError, match="can no longer be used"):
        exchange(oauth, code)


def test_spending_an_exchanged_code_keeps_its_tokens(oauth) -> None:
    # Revoking what a code produced takes the client's credentials (an authenticated reuse):
    # anyone who saw an old code in a browser history must not be able to end the grant.
    code = authorize(oauth)
    tokens = exchange(oauth, code)
    assert oauth.spend_codes([code], "test") == 0
    with pytest.raises(OAuthError):
        oauth.token(q(grant_type="authorization_code", code=code), basic(password="wrong"))
    assert oauth.check_access(tokens["access_token"]).ok
    with pytest.raises(OAuthError, match="already used"):
        exchange(oauth, code)  # authenticated reuse: revoked (RFC 6749 §4.1.2)
    assert not oauth.check_access(tokens["access_token"]).ok


def test_codes_are_found_in_any_body(oauth) -> None:
    code = authorize(oauth)
    assert find_codes(json.dumps({"grant_type": "authorization_code", "code": code})) == [code]
    escaped = json.dumps({"code": code}).replace('"ac_', '"\\u0061c_')
    assert code not in escaped and find_codes(escaped.encode()) == [code]
    assert find_codes(f"grant_type=authorization_code&code={code}".encode()) == [code]
    assert find_codes(b"\xff\xfe not a code: ac_short") == []
    assert find_codes(b'{"broken": "\\u00') == []
    assert oauth.spend_codes(find_codes(escaped), "sent as JSON") == 1
    with pytest.raises(OAuthError, match=r"refused \(sent as JSON\)"):
        exchange(oauth, code)


# --- error_description's character set (RFC 6749 §5.2) --------------------------------------
def test_error_descriptions_keep_to_their_character_set() -> None:
    error = OAuthError("invalid_request", 'a "b" \\ é\n(RFC 6749 §3.2)')
    assert error.description == "a 'b' / ? (RFC 6749 section 3.2)"
    assert error.to_body()["error_description"] == error.description
    assert str(error) == error.description


def test_client_input_in_a_description_is_kept_to_the_set(oauth) -> None:
    with pytest.raises(AuthorizeError) as info:
        oauth.begin_authorization(q(response_type="code", client_id='é"\\x'))
    assert info.value.description == "Unknown client_id '?'//x'"  # repr doubles the \\


# --- pending consent requests cannot be evicted ---------------------------------------------
def begin(oauth: OAuthServer, origin: str, state: str = "st") -> AuthorizationRequest:
    return oauth.begin_authorization(
        q(response_type="code", client_id="okta", redirect_uri=REDIRECT, state=state), origin
    )


def flood(oauth: OAuthServer, origins: list[str]) -> tuple[int, list[AuthorizeError]]:
    accepted, errors = 0, []
    for n, origin in enumerate(origins):
        try:
            begin(oauth, origin, state=f"flood{n}")
            accepted += 1
        except AuthorizeError as exc:
            errors.append(exc)
    return accepted, errors


def approve_works(oauth: OAuthServer, request: AuthorizationRequest) -> None:
    url = oauth.decide(request.id, request.csrf, approve=True)
    code = parse_qs(urlsplit(url).query)["code"][0]
    assert "access_token" in exchange(oauth, code)


@pytest.mark.parametrize("flood_origin", ["198.51.100.7", "127.0.0.1"])
def test_a_flood_from_one_client_cannot_evict_a_consent(oauth, clock, flood_origin) -> None:
    # 127.0.0.1 is also the user's address: behind a tunnel everyone has the tunnel's.
    mine = begin(oauth, "127.0.0.1")
    accepted, errors = flood(oauth, [flood_origin] * 1000)
    same = flood_origin == "127.0.0.1"
    assert accepted == MAX_PENDING_PER_ORIGIN - (1 if same else 0)
    assert oauth.pending_count() == (MAX_PENDING_PER_ORIGIN + (0 if same else 1))
    # Refused the RFC 6749 §4.1.2.1 way: back to the client, with its state.
    last = errors[-1]
    assert last.error == "temporarily_unavailable" and last.redirect_uri == REDIRECT
    query = parse_qs(urlsplit(last.redirect_url()).query)
    assert query["state"] == ["flood999"] and query["error"] == ["temporarily_unavailable"]
    assert "from this address" in last.description and "try again in" in last.description
    clock.now += 60
    assert oauth.pending(mine.id) == mine
    approve_works(oauth, mine)


def test_a_flood_from_many_clients_fills_the_table_but_evicts_nothing(oauth, clock) -> None:
    mine = begin(oauth, "127.0.0.1")
    origins = [f"10.0.{n // 250}.{n % 250}" for n in range(1000)]
    accepted, errors = flood(oauth, origins)
    assert accepted == MAX_PENDING - 1 and len(errors) == 1000 - accepted
    assert oauth.pending_count() == MAX_PENDING  # bounded: nothing more is kept
    assert "from this address" not in errors[0].description
    # Nobody new gets in while it is full, but what waits stays approvable.
    with pytest.raises(AuthorizeError, match="Too many authorization requests are waiting"):
        begin(oauth, "192.0.2.1")
    approve_works(oauth, mine)
    assert begin(oauth, "192.0.2.1").id  # the place it freed


def test_half_full_means_shorter_waits(oauth, clock) -> None:
    requests = [begin(oauth, "198.51.100.7", state=f"s{n}") for n in range(MAX_PENDING_PER_ORIGIN)]
    waits = [r.expires_at - clock.now for r in requests]
    half = MAX_PENDING_PER_ORIGIN // 2
    assert waits == [PENDING_TTL] * half + [PENDING_TTL_BUSY] * (MAX_PENDING_PER_ORIGIN - half)
    with pytest.raises(AuthorizeError, match=f"try again in {PENDING_TTL_BUSY} seconds"):
        begin(oauth, "198.51.100.7")
    # The flood's own late entries make room soon after it stops.
    clock.now += PENDING_TTL_BUSY
    assert oauth.pending_count() == half
    assert begin(oauth, "198.51.100.7").expires_at == clock.now + PENDING_TTL_BUSY


def test_refused_requests_are_not_kept(oauth) -> None:
    for _ in range(1000):
        with pytest.raises(AuthorizeError):
            oauth.begin_authorization(
                q(response_type="token", client_id="okta", redirect_uri=REDIRECT), "203.0.113.9"
            )
    assert oauth.pending_count() == 0


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("fe80::1%eth0", "fe80::/64"),
        ("", ""),
        ("not an address", "not an address"),
    ],
)
def test_origin_key(address: str, key: str) -> None:
    assert origin_key(address) == key


@pytest.mark.parametrize(
    ("address", "forwarded_for", "key"),
    [
        # Behind a tunnel: the entry the tunnel added (the last) names the client.
        ("127.0.0.1", "203.0.113.9", "203.0.113.9"),
        ("127.0.0.1", "10.9.9.9, 203.0.113.9", "203.0.113.9"),
        ("::1", "2001:db8:5:6::1", "2001:db8:5:6::/64"),
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", " , ", "127.0.0.1"),
        ("127.0.0.1", "x" * 500, "x" * 100),
        # A remote peer's header is not believed: it could forge a key per request.
        ("192.0.2.7", "203.0.113.9", "192.0.2.7"),
    ],
)
def test_origin_key_behind_a_tunnel(address: str, forwarded_for: str, key: str) -> None:
    assert origin_key(address, forwarded_for) == key
