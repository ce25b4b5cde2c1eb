"""OAuth secrets never reach request records: query strings, form bodies, redirects."""

from __future__ import annotations

from scim_desktop.server.events import (
    redact_body,
    redact_form,
    redact_headers,
    redact_params,
    redact_url,
)


def test_form_bodies_hide_codes_secrets_and_tokens() -> None:
    body = (
        b"grant_type=authorization_code&code=ac_SECRET1&redirect_uri=https%3A%2F%2Fx%2Fcb"
        b"&client_id=okta&client_secret=SECRET2&code_verifier=SECRET3"
    )
    text = redact_form(body)
    assert "SECRET" not in text
    assert text == (
        "grant_type=authorization_code&code=***&redirect_uri=https%3A%2F%2Fx%2Fcb"
        "&client_id=okta&client_secret=***&code_verifier=***"
    )
    refresh = redact_form(b"grant_type=refresh_token&refresh_token=rt_SECRET&scope=scim")
    assert refresh == "grant_type=refresh_token&refresh_token=***&scope=scim"
    revoke = redact_form(b"token=at_SECRET&token_type_hint=access_token")
    assert revoke == "token=***&token_type_hint=access_token"


def test_encoded_and_odd_parameter_names_are_still_caught() -> None:
    assert (
        redact_params("client%5Fsecret=S1&CODE=S2&code+=S3")
        == "client%5Fsecret=***&CODE=***&code+=***"
    )
    assert redact_params("code") == "code"  # no value, nothing to hide
    assert redact_params("") == ""
    assert redact_params("a=1&&b=2") == "a=1&&b=2"


def test_query_strings_keep_what_is_not_secret() -> None:
    query = (
        "response_type=code&client_id=okta&redirect_uri=https%3A%2F%2Fx&state=abc"
        "&code_challenge=xyz"
    )
    assert redact_params(query) == query
    assert redact_params("code=ac_123&state=abc") == "code=***&state=abc"


def test_redirect_location_hides_the_code() -> None:
    url = "https://system-admin.okta.com/admin/app/cpc/x/oauth/callback?code=ac_SECRET&state=s1"
    assert redact_url(url) == (
        "https://system-admin.okta.com/admin/app/cpc/x/oauth/callback?code=***&state=s1"
    )
    assert redact_url("https://a/cb#access_token=SECRET&x=1") == "https://a/cb#access_token=***&x=1"
    headers = redact_headers({"Location": url, "Content-Type": "text/html"})
    assert "SECRET" not in headers["Location"] and headers["Content-Type"] == "text/html"
    # SCIM Location headers are untouched.
    scim = "https://h/scim/v2/Users/2819c223"
    assert redact_headers({"Location": scim}) == {"Location": scim}


def test_token_responses_hide_tokens() -> None:
    body = (
        b'{"access_token":"at_S1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt_S2"}'
    )
    text = redact_body(body)
    assert "at_S1" not in text and "rt_S2" not in text and '"expires_in":3600' in text
