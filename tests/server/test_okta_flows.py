"""Every Okta flow from OKTA.md, replayed over a real socket with Okta's headers and bodies.

Fixture and test names follow the Okta lifecycle step they reproduce.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import TOKEN
from tests.scim_client import ScimClient, filter_query

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


def okta_create_body(email: str, given: str = "Jane", family: str = "Doe") -> dict[str, Any]:
    """The body Okta POSTs to /Users (OKTA.md, "Create", step 2)."""
    return {
        "schemas": [USER_SCHEMA],
        "userName": email,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "displayName": f"{given} {family}",
        "locale": "en-US",
        "externalId": "00u1abcd" + str(abs(hash(email)) % 10**8),
        "groups": [],
        "password": "Pl@ceholder-123",
        "active": True,
    }


def existence_check(client: ScimClient, user_name: str) -> dict[str, Any]:
    text = f'userName eq "{user_name}"'
    resp = client.get(f"/Users?{filter_query(text)}&startIndex=1&count=100")
    assert resp.status == 200
    return resp.body


@pytest.fixture
def created_user(client: ScimClient) -> dict[str, Any]:
    """Okta's "Create user": existence check, then POST."""
    assert existence_check(client, "jane@example.com")["totalResults"] == 0
    resp = client.post("/Users", okta_create_body("jane@example.com"))
    assert resp.status == 201, resp.body
    return resp.body


@pytest.fixture
def pushed_group(client: ScimClient) -> dict[str, Any]:
    """Okta's "Push group: create"."""
    resp = client.post(
        "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Sales", "members": []}
    )
    assert resp.status == 201, resp.body
    return resp.body


def make_users(client: ScimClient, n: int, prefix: str = "user") -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        resp = client.post("/Users", okta_create_body(f"{prefix}{i:05d}@example.com", f"G{i}"))
        assert resp.status == 201, resp.body
        out.append(resp.body)
    return out


def test_test_api_credentials(client: ScimClient) -> None:
    resp = client.get("/Users?startIndex=1&count=2")
    assert resp.status == 200
    assert resp.header("Content-Type") == "application/scim+json; charset=utf-8"
    body = resp.body
    assert body["schemas"] == [LIST_SCHEMA]
    assert body["totalResults"] == 0 and body["startIndex"] == 1 and body["itemsPerPage"] == 0
    assert body["Resources"] == []
    groups = client.get("/Groups?startIndex=1&count=100")
    assert groups.status == 200 and groups.body["totalResults"] == 0


def test_create_user(client: ScimClient, created_user: dict[str, Any]) -> None:
    user = created_user
    assert user["id"] and user["userName"] == "jane@example.com"
    assert user["schemas"] == [USER_SCHEMA]
    assert user["name"] == {"givenName": "Jane", "familyName": "Doe"}
    assert user["active"] is True
    assert "password" not in user and not any(k.startswith("_") for k in user)
    assert user["meta"]["resourceType"] == "User"
    assert user["meta"]["location"].endswith(f"/scim/v2/Users/{user['id']}")
    assert user["meta"]["created"] == user["meta"]["lastModified"]
    # The created user is found by Okta's existence check, case-insensitively.
    found = existence_check(client, "JANE@EXAMPLE.COM")
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == user["id"]


def test_create_user_answer_headers(client: ScimClient) -> None:
    resp = client.post("/Users", okta_create_body("h@example.com"))
    assert resp.status == 201
    assert resp.header("Location") == resp.body["meta"]["location"]
    assert resp.header("ETag") == resp.body["meta"]["version"]
    assert resp.header("Content-Type") == "application/scim+json; charset=utf-8"


def test_create_duplicate_user_is_409_uniqueness(client: ScimClient, created_user: dict) -> None:
    body = okta_create_body("JANE@example.com")
    resp = client.post("/Users", body)
    assert resp.status == 409
    assert resp.body["schemas"] == [ERROR_SCHEMA]
    assert resp.body["status"] == "409" and resp.body["scimType"] == "uniqueness"
    assert "jane@example.com".lower() in resp.body["detail"].lower()
    assert client.get("/Users").body["totalResults"] == 1


def test_create_accepts_plain_application_json(client: ScimClient) -> None:
    resp = client.post(
        "/Users", okta_create_body("spec@example.com"), content_type="application/json"
    )
    assert resp.status == 201


def test_link_existing_user(client: ScimClient, created_user: dict[str, Any]) -> None:
    """Okta finds the user in the existence check, then GETs and PUTs it."""
    found = existence_check(client, "jane@example.com")["Resources"][0]
    got = client.get(f"/Users/{found['id']}")
    assert got.status == 200 and got.body == found
    body = {**got.body, "externalId": "00uLINKED"}
    put = client.put(f"/Users/{found['id']}", body)
    assert put.status == 200 and put.body["externalId"] == "00uLINKED"


def test_update_profile_put(client: ScimClient, created_user: dict[str, Any]) -> None:
    uid = created_user["id"]
    current = client.get(f"/Users/{uid}").body
    current["name"]["givenName"] = "Janet"
    current["displayName"] = "Janet Doe"
    resp = client.put(f"/Users/{uid}", current)
    assert resp.status == 200
    assert resp.body["name"]["givenName"] == "Janet"
    assert resp.body["meta"]["created"] == created_user["meta"]["created"]
    assert resp.body["meta"]["version"] != created_user["meta"]["version"]
    assert client.get(f"/Users/{uid}").body["displayName"] == "Janet Doe"


def test_deactivate_and_reactivate_patch(client: ScimClient, created_user: dict) -> None:
    uid = created_user["id"]
    deactivate = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "value": {"active": False}}],
    }
    resp = client.patch(f"/Users/{uid}", deactivate)
    assert resp.status == 200 and resp.body["active"] is False
    assert client.get(f"/Users/{uid}").body["active"] is False
    reactivate = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "value": {"active": True}}],
    }
    resp = client.patch(f"/Users/{uid}", reactivate)
    assert resp.status == 200 and resp.body["active"] is True


def test_password_sync_patch_changes_hash_and_never_returns_it(
    client: ScimClient, created_user: dict, server
) -> None:
    uid = created_user["id"]

    def stored_hash() -> str:
        return server.call(lambda: server.store.get("User", uid)["_password"]).result(5)

    before = stored_hash()
    assert before.startswith("hmac_sha256$") and "Pl@ceholder" not in before
    resp = client.patch(
        f"/Users/{uid}",
        {
            "schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "replace", "path": "password", "value": "N3w-secret!"}],
        },
    )
    assert resp.status == 200 and "password" not in resp.body
    after = stored_hash()
    assert after != before

    from scim_desktop.core.resources import verify_password

    key = server.call(lambda: server.context.service.password_key).result(5)
    assert verify_password("N3w-secret!", after, key)
    assert not verify_password("Pl@ceholder-123", after, key)
    assert not verify_password("N3w-secret!", after, b"another key" * 3)
    # A GET-then-PUT (AIW) round trip without the password keeps it.
    client.put(f"/Users/{uid}", client.get(f"/Users/{uid}").body)
    assert stored_hash() == after


def test_deactivate_aiw_put(client: ScimClient, created_user: dict[str, Any]) -> None:
    uid = created_user["id"]
    current = client.get(f"/Users/{uid}").body
    current["active"] = False
    resp = client.put(f"/Users/{uid}", current)
    assert resp.status == 200 and resp.body["active"] is False


def test_import_users_paging(client: ScimClient) -> None:
    made = make_users(client, 250)
    seen: list[str] = []
    start = 1
    while True:
        resp = client.get(f"/Users?startIndex={start}&count=100")
        body = resp.body
        assert body["totalResults"] == 250 and body["startIndex"] == start
        assert isinstance(body["itemsPerPage"], int)
        seen += [r["id"] for r in body["Resources"]]
        start += 100
        if start > body["totalResults"]:
            break
    assert seen == [u["id"] for u in made]  # stable creation order, no gaps or repeats
    assert len(seen) == len(set(seen)) == 250
    # startIndex below 1 means 1; count=0 gives only totalResults.
    assert client.get("/Users?startIndex=0&count=1").body["Resources"][0]["id"] == made[0]["id"]
    zero = client.get("/Users?count=0").body
    assert zero["totalResults"] == 250 and zero["itemsPerPage"] == 0 and zero["Resources"] == []


def test_group_push_full_lifecycle(client: ScimClient, pushed_group: dict[str, Any]) -> None:
    gid = pushed_group["id"]
    users = make_users(client, 3)
    ids = [u["id"] for u in users]
    # Lookup by displayName.
    lookup = filter_query('displayName eq "Sales"')
    found = client.get(f"/Groups?{lookup}&startIndex=1&count=100").body
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == gid
    # Read, and list without members.
    assert client.get(f"/Groups/{gid}").body["displayName"] == "Sales"
    listed = client.get("/Groups?startIndex=1&count=100&excludedAttributes=members").body
    assert listed["Resources"][0]["id"] == gid and "members" not in listed["Resources"][0]
    # Add members (no "type" on member objects), then the rename Okta sends after it.
    add = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [
            {
                "op": "add",
                "path": "members",
                "value": [{"value": u["id"], "display": u["userName"]} for u in users],
            }
        ],
    }
    resp = client.patch(f"/Groups/{gid}", add)
    assert resp.status == 200
    assert [m["value"] for m in resp.body["members"]] == ids
    assert all(m["type"] == "User" and m["$ref"].endswith(m["value"]) for m in resp.body["members"])
    rename = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "value": {"id": gid, "displayName": "Sales EMEA"}}],
    }
    resp = client.patch(f"/Groups/{gid}", rename)
    assert resp.status == 200 and resp.body["displayName"] == "Sales EMEA"
    assert len(resp.body["members"]) == 3
    # Users show the group they belong to.
    user = client.get(f"/Users/{ids[0]}").body
    assert user["groups"] == [
        {
            "value": gid,
            "$ref": user["groups"][0]["$ref"],
            "display": "Sales EMEA",
            "type": "direct",
        }
    ]
    # Remove exactly one member by value filter.
    remove = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "remove", "path": f'members[value eq "{ids[1]}"]'}],
    }
    resp = client.patch(f"/Groups/{gid}", remove)
    assert [m["value"] for m in resp.body["members"]] == [ids[0], ids[2]]
    # Push Now: replace members, then replace with [] empties the group.
    push_now = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "path": "members", "value": [{"value": ids[1]}]}],
    }
    resp = client.patch(f"/Groups/{gid}", push_now)
    assert [m["value"] for m in resp.body["members"]] == [ids[1]]
    empty = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "path": "members", "value": []}],
    }
    resp = client.patch(f"/Groups/{gid}", empty)
    assert resp.status == 200 and resp.body.get("members", []) == []
    assert "groups" not in client.get(f"/Users/{ids[1]}").body
    # AIW: full PUT.
    put = client.put(
        f"/Groups/{gid}",
        {"schemas": [GROUP_SCHEMA], "displayName": "Sales", "members": [{"value": ids[2]}]},
    )
    assert put.status == 200 and [m["value"] for m in put.body["members"]] == [ids[2]]
    # Delete.
    assert client.delete(f"/Groups/{gid}").status == 204
    gone = client.get(f"/Groups/{gid}")
    assert gone.status == 404 and gone.body["schemas"] == [ERROR_SCHEMA]
    assert "groups" not in client.get(f"/Users/{ids[2]}").body


def test_okta_spec_test_sequence(client: ScimClient) -> None:
    """Okta's SCIM 2.0 SPEC test, step by step (needs one user to exist first)."""
    make_users(client, 1, prefix="seed")
    r1 = client.get("/Users?count=1&startIndex=1")
    assert r1.status == 200 and LIST_SCHEMA in r1.body["schemas"]
    first = r1.body["Resources"][0]
    for key in ("id", "userName", "active"):
        assert first[key] not in (None, "")
    assert first["name"]["givenName"] and first["name"]["familyName"]
    assert first["emails"][0]["value"]
    for key in ("itemsPerPage", "startIndex", "totalResults"):
        assert isinstance(r1.body[key], int)
    r2 = client.get(f"/Users/{first['id']}")
    assert r2.status == 200 and r2.body["id"] == first["id"]
    r3 = client.get("/Users?" + filter_query('userName eq "not-there@example.com"'))
    assert r3.status == 200 and r3.body["totalResults"] == 0
    r4 = client.get("/Users/does-not-exist")
    assert r4.status == 404 and r4.body["detail"] and r4.body["schemas"] == [ERROR_SCHEMA]
    body = okta_create_body("spec.runner@example.com", "Spec", "Runner")
    r6 = client.post("/Users", body, content_type="application/json")
    assert r6.status == 201 and r6.body["active"] is True and USER_SCHEMA in r6.body["schemas"]
    r7 = client.get(f"/Users/{r6.body['id']}")
    assert r7.body["userName"] == "spec.runner@example.com"
    assert client.post("/Users", body, content_type="application/json").status == 409
    r9 = client.get("/Users?" + filter_query('userName eq "SPEC.RUNNER@EXAMPLE.COM"'))
    assert r9.status == 200 and r9.body["totalResults"] == 1
    assert client.get("/Groups").status == 200
    bad = ScimClient(client_base(client), token="wrong")
    r11 = bad.get("/Users")
    bad.close()
    assert r11.status == 401 and r11.body["status"] == "401" and r11.body["detail"]
    r12 = client.get("/Users/00919288221112222")
    assert r12.status == 404 and r12.body["status"] == "404"


def client_base(client: ScimClient) -> str:
    return f"http://{client.host}:{client.port}{client.base_path}"


def test_password_key_lives_beside_the_data_not_in_it(db_path, sink) -> None:
    from scim_desktop.config import AuthConfig, ServerConfig, password_key_path_for
    from scim_desktop.core.resources import verify_password
    from scim_desktop.server.runner import ServerThread

    config = ServerConfig(
        host="127.0.0.1", port=0, db_path=db_path, auth=AuthConfig("bearer", token=TOKEN)
    )
    for round_ in range(2):  # the second start reuses the key
        server = ServerThread(config, sink)
        server.start()
        try:
            c = ScimClient(server.base_url, token=TOKEN)
            if round_ == 0:
                uid = c.post("/Users", okta_create_body("keyed@example.com")).body["id"]
            store = server.store
            stored = server.call(store.get, "User", uid).result(5)["_password"]
            c.close()
        finally:
            server.stop()
        key = bytes.fromhex(password_key_path_for(db_path).read_text().strip())
        assert verify_password("Pl@ceholder-123", stored, key)
    data = db_path.read_text()
    assert "Pl@ceholder" not in data and key.hex() not in data
