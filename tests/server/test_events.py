"""Redaction of secrets in request records (logs, the window, exports)."""

from __future__ import annotations

import json

from scim_desktop.server.events import redact_body, redact_headers


def test_passwords_are_redacted_in_every_form() -> None:
    body = {
        "password": "a1",
        "Password": "a2",
        "urn:ietf:params:scim:schemas:core:2.0:User:password": "a3",
        "urn:ietf:params:scim:schemas:core:2.0:User": {"password": "a4"},
        "Operations": [
            {"op": "replace", "path": "PASSWORD", "value": "a5"},
            {
                "op": "replace",
                "path": "urn:ietf:params:scim:schemas:core:2.0:User:password",
                "value": "a6",
            },
            {
                "op": "replace",
                "value": {"urn:ietf:params:scim:schemas:core:2.0:User:password": "a7"},
            },
        ],
        "userName": "kept",
    }
    text = redact_body(json.dumps(body).encode())
    assert not any(f"a{i}" in text for i in range(1, 8))
    assert "kept" in text


def test_broken_json_still_hides_passwords() -> None:
    text = redact_body(b'{"userName": "x", "password": "s3cr3t", "urn:x:password": "p2", ')
    assert "s3cr3t" not in text and "p2" not in text and "userName" in text


def test_authorization_headers_keep_only_the_scheme() -> None:
    out = redact_headers({"Authorization": "Bearer abc", "Cookie": "sid=1", "Accept": "x"})
    assert out == {"Authorization": "Bearer ***", "Cookie": "***", "Accept": "x"}
