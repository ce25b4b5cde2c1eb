"""RFC 7643 / 7644 behaviour over real sockets: errors, content types, ETags, projection,
sorting, cursors, discovery, extensions and membership rules."""

from __future__ import annotations

import gzip
import http.client
import json
import socket

import pytest

from tests.conftest import TOKEN
from tests.scim_client import ScimClient, filter_query
from tests.server.test_okta_flows import (
    ERROR_SCHEMA,
    GROUP_SCHEMA,
    PATCH_SCHEMA,
    USER_SCHEMA,
    make_users,
    okta_create_body,
)

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def assert_scim_error(resp, status: int, scim_type: str | None = None) -> dict:
    assert resp.status == status, resp.raw
    assert resp.header("Content-Type") == "application/scim+json; charset=utf-8"
    body = resp.body
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status)
    assert body["detail"]
    if scim_type is None:
        assert "scimType" not in body
    else:
        assert body["scimType"] == scim_type
    return body


# --- authentication -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", f"Basic {TOKEN}", f"bearer {TOKEN}x", "Bearer", ""],
)
def test_bad_credentials_get_401_with_challenge(server, authorization) -> None:
    c = ScimClient(server.base_url, headers={"Authorization": authorization})
    resp = c.get("/Users")
    c.close()
    assert_scim_error(resp, 401)
    assert resp.header(
        "WWW-Authenticate",
    ).startswith("Bearer")


def test_bearer_scheme_is_case_insensitive(server) -> None:
    c = ScimClient(server.base_url, headers={"Authorization": f"bearer {TOKEN}"})
    assert c.get("/Users").status == 200
    c.close()


def test_401_does_not_leak_into_storage(server) -> None:
    c = ScimClient(server.base_url, token="nope")
    assert c.post("/Users", okta_create_body("x@example.com")).status == 401
    c.close()
    good = ScimClient(server.base_url, token=TOKEN)
    assert good.get("/Users").body["totalResults"] == 0
    good.close()


# --- errors ---------------------------------------------------------------------------------
def test_unknown_route_is_scim_404(client: ScimClient) -> None:
    assert_scim_error(client.get("/Nope"), 404)
    resp = client.request("GET", "/favicon.ico")
    assert resp.status == 404 and resp.body["schemas"] == [ERROR_SCHEMA]


def test_unknown_resource_is_scim_404(client: ScimClient) -> None:
    assert_scim_error(client.get("/Users/00919288221112222"), 404)
    assert_scim_error(client.get("/Groups/nope"), 404)
    assert_scim_error(client.put("/Users/nope", okta_create_body("a@example.com")), 404)
    assert_scim_error(client.delete("/Users/nope"), 404)


def test_method_not_allowed_is_scim_405(client: ScimClient) -> None:
    body = assert_scim_error(client.delete("/Users"), 405)
    assert "DELETE" in body["detail"]
    resp = client.delete("/Users")
    assert "GET" in resp.header("Allow") and "POST" in resp.header("Allow")


def test_me_and_bulk_are_501(client: ScimClient) -> None:
    assert_scim_error(client.get("/Me"), 501)
    assert_scim_error(client.post("/Bulk", {"schemas": []}), 501)


def test_malformed_json_is_400_invalid_syntax(client: ScimClient) -> None:
    assert_scim_error(client.post("/Users", raw=b'{"userName": '), 400, "invalidSyntax")
    assert_scim_error(client.post("/Users", raw=b"[1, 2]"), 400, "invalidSyntax")
    assert_scim_error(client.post("/Users", raw=b""), 400, "invalidSyntax")


def test_wrong_content_type_is_415(client: ScimClient) -> None:
    resp = client.post(
        "/Users", raw=b"userName=x", content_type="application/x-www-form-urlencoded"
    )
    assert_scim_error(resp, 415)


def test_body_over_limit_is_413_and_server_keeps_serving(client: ScimClient) -> None:
    big = okta_create_body("big@example.com")
    big["title"] = "x" * (1024 * 1024 + 10)
    assert_scim_error(client.post("/Users", big), 413)
    assert client.get("/Users").status == 200
    assert client.get("/Users").body["totalResults"] == 0


def test_chunked_body_over_limit_never_stored(server) -> None:
    """A body streamed without Content-Length is refused too, and nothing is stored."""
    host, port = "127.0.0.1", server.port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/scim+json\r\n"
            + f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
        )
        chunk = b"a" * 65536
        try:
            for _ in range(40):
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            reply = sock.recv(65536)
        except ConnectionResetError:
            reply = b""
    assert reply.split(b"\r\n", 1)[0] == b"HTTP/1.1 413 Request Entity Too Large"
    assert b'"scimType"' not in reply and b'"status":"413"' in reply
    c = ScimClient(server.base_url, token=TOKEN)
    assert c.get("/Users").body["totalResults"] == 0
    c.close()


def test_invalid_filter_is_400_invalid_filter(client: ScimClient) -> None:
    for text in ["userName eq", 'userName equals "x"', '(userName eq "x"', 'userName eq "x" and']:
        assert_scim_error(client.get("/Users?" + filter_query(text)), 400, "invalidFilter")


def test_wrong_types_are_400_invalid_value(client: ScimClient) -> None:
    for patch in ({"active": "yes"}, {"emails": "a@b.c"}, {"name": "Jane"}, {"userName": 5}):
        body = {**okta_create_body("t@example.com"), **patch}
        assert_scim_error(client.post("/Users", body), 400, "invalidValue")
    missing = okta_create_body("t@example.com")
    del missing["userName"]
    assert_scim_error(client.post("/Users", missing), 400, "invalidValue")
    assert client.get("/Users").body["totalResults"] == 0


def test_bad_paging_values_are_400(client: ScimClient) -> None:
    assert_scim_error(client.get("/Users?count=ten"), 400, "invalidValue")
    assert_scim_error(client.get("/Users?startIndex=1.5"), 400, "invalidValue")


def test_unexpected_exception_is_500_scim_error_and_server_survives(server, client) -> None:
    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    service = server.context.service
    original = service.list_steps
    server.call(setattr, service, "list_steps", explode).result(5)
    try:
        resp = client.get("/Users")
    finally:
        server.call(setattr, service, "list_steps", original).result(5)
    body = assert_scim_error(resp, 500)
    assert "boom" not in body["detail"] and "Traceback" not in resp.raw.decode()
    assert client.get("/Users").status == 200


# --- read-only and write-only attributes ---------------------------------------------------------
def test_read_only_attributes_in_input_are_ignored(client: ScimClient) -> None:
    body = {
        **okta_create_body("ro@example.com"),
        "id": "client-chosen",
        "meta": {"created": "1999-01-01T00:00:00Z"},
        "groups": [{"value": "g1"}],
    }
    resp = client.post("/Users", body)
    assert resp.status == 201
    assert resp.body["id"] != "client-chosen"
    assert resp.body["meta"]["created"] != "1999-01-01T00:00:00Z"
    assert "groups" not in resp.body


def test_patch_read_only_path_is_mutability_error(client: ScimClient) -> None:
    uid = client.post("/Users", okta_create_body("m@example.com")).body["id"]
    op = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": "id", "value": "x"}]}
    assert_scim_error(client.patch(f"/Users/{uid}", op), 400, "mutability")


def test_patch_errors(client: ScimClient) -> None:
    uid = client.post("/Users", okta_create_body("p@example.com")).body["id"]
    no_path = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "remove"}]}
    assert_scim_error(client.patch(f"/Users/{uid}", no_path), 400, "noTarget")
    bad_op = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "frobnicate", "value": {}}]}
    assert_scim_error(client.patch(f"/Users/{uid}", bad_op), 400, "invalidSyntax")
    no_ops = {"schemas": [PATCH_SCHEMA]}
    assert_scim_error(client.patch(f"/Users/{uid}", no_ops), 400, "invalidSyntax")
    bad_path = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "path": "emails[type eq]", "value": "x"}],
    }
    assert_scim_error(client.patch(f"/Users/{uid}", bad_path), 400, "invalidPath")


def test_patch_to_taken_username_is_409(client: ScimClient) -> None:
    client.post("/Users", okta_create_body("one@example.com"))
    uid = client.post("/Users", okta_create_body("two@example.com")).body["id"]
    op = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "path": "userName", "value": "ONE@example.com"}],
    }
    assert_scim_error(client.patch(f"/Users/{uid}", op), 409, "uniqueness")
    assert client.get(f"/Users/{uid}").body["userName"] == "two@example.com"


# --- ETags ----------------------------------------------------------------------------------
def test_etags(client: ScimClient) -> None:
    created = client.post("/Users", okta_create_body("e@example.com"))
    uid, etag = created.body["id"], created.header("ETag")
    assert etag.startswith('W/"')
    not_modified = client.get(f"/Users/{uid}", headers={"If-None-Match": etag})
    assert not_modified.status == 304 and not_modified.raw == b""
    assert client.get(f"/Users/{uid}", headers={"If-None-Match": 'W/"999"'}).status == 200
    patch = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "value": {"title": "X"}}]}
    ok = client.patch(f"/Users/{uid}", patch, headers={"If-Match": etag})
    assert ok.status == 200 and ok.header("ETag") != etag
    stale = client.patch(f"/Users/{uid}", patch, headers={"If-Match": etag})
    assert_scim_error(stale, 412)
    assert_scim_error(client.delete(f"/Users/{uid}", headers={"If-Match": etag}), 412)
    assert client.delete(f"/Users/{uid}", headers={"If-Match": "*"}).status == 204


def test_noop_patch_keeps_version(client: ScimClient) -> None:
    created = client.post("/Users", okta_create_body("n@example.com")).body
    patch = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "value": {"active": True}}],
    }
    resp = client.patch(f"/Users/{created['id']}", patch)
    assert resp.body["meta"]["version"] == created["meta"]["version"]


# --- content negotiation --------------------------------------------------------------------
def test_gzip_when_accepted(server) -> None:
    c = ScimClient(server.base_url, token=TOKEN)
    make_users(c, 20)
    c.close()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request(
        "GET",
        "/scim/v2/Users",
        headers={"Authorization": f"Bearer {TOKEN}", "Accept-Encoding": "gzip,deflate"},
    )
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    assert resp.getheader("Content-Encoding") == "gzip"
    assert json.loads(gzip.decompress(raw))["totalResults"] == 20


def test_location_follows_forwarded_headers(client: ScimClient) -> None:
    resp = client.post(
        "/Users",
        okta_create_body("fw@example.com"),
        headers={"X-Forwarded-Proto": "https", "Host": "demo.trycloudflare.com"},
    )
    assert resp.body["meta"]["location"].startswith("https://demo.trycloudflare.com/scim/v2/Users/")
    assert resp.header("Location") == resp.body["meta"]["location"]


# --- projection, sorting, cursors, search ---------------------------------------------------
def test_attributes_and_excluded_attributes(client: ScimClient) -> None:
    uid = client.post("/Users", okta_create_body("proj@example.com")).body["id"]
    only = client.get(f"/Users/{uid}?attributes=userName,name.givenName").body
    assert set(only) == {"schemas", "id", "userName", "name"}
    assert only["name"] == {"givenName": "Jane"}
    without = client.get(f"/Users/{uid}?excludedAttributes=emails,name,id").body
    assert "emails" not in without and "name" not in without and without["id"] == uid
    listed = client.get("/Users?attributes=emails.value").body["Resources"][0]
    assert listed["emails"] == [{"value": "proj@example.com"}] and "userName" not in listed


def test_sort_by_and_order(client: ScimClient) -> None:
    for name in ["carol", "alice", "Bob"]:
        client.post("/Users", okta_create_body(f"{name}@example.com"))
    asc = client.get("/Users?sortBy=userName").body["Resources"]
    assert [u["userName"] for u in asc] == [
        "alice@example.com",
        "Bob@example.com",
        "carol@example.com",
    ]
    desc = client.get("/Users?sortBy=userName&sortOrder=descending").body["Resources"]
    assert [u["userName"] for u in desc] == [u["userName"] for u in reversed(asc)]


def test_cursor_paging_stays_valid_while_data_changes(client: ScimClient) -> None:
    made = make_users(client, 25)
    first = client.get("/Users?cursor&count=10").body
    assert [u["id"] for u in first["Resources"]] == [u["id"] for u in made[:10]]
    assert "previousCursor" not in first and first["totalResults"] == 25
    assert "startIndex" not in first
    # Data changes between pages: an earlier user is deleted, a new one is added.
    client.delete(f"/Users/{made[0]['id']}")
    extra = client.post("/Users", okta_create_body("late@example.com")).body
    second = client.get(f"/Users?cursor={first['nextCursor']}&count=10").body
    assert [u["id"] for u in second["Resources"]] == [u["id"] for u in made[10:20]]
    assert second["previousCursor"]
    third = client.get(f"/Users?cursor={second['nextCursor']}&count=10").body
    assert [u["id"] for u in third["Resources"]] == [u["id"] for u in made[20:]] + [extra["id"]]
    assert "nextCursor" not in third
    back = client.get(f"/Users?cursor={second['previousCursor']}&count=10").body
    assert [u["id"] for u in back["Resources"]] == [u["id"] for u in made[1:10]]
    assert_scim_error(client.get("/Users?cursor=garbage!!&count=10"), 400, "invalidCursor")


def test_search_endpoints(client: ScimClient) -> None:
    make_users(client, 3)
    gid = client.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Eng"}).body["id"]
    request = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'userName sw "user0000"',
        "attributes": ["userName"],
        "startIndex": 1,
        "count": 2,
    }
    resp = client.post("/Users/.search", request)
    assert resp.status == 200
    assert resp.body["totalResults"] == 3 and len(resp.body["Resources"]) == 2
    assert set(resp.body["Resources"][0]) == {"schemas", "id", "userName"}
    everything = client.post(
        "/.search",
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]},
    ).body
    assert everything["totalResults"] == 4
    assert everything["Resources"][-1]["id"] == gid
    groups = client.post(
        "/Groups/.search",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'displayName eq "eng"',
        },
    ).body
    assert groups["totalResults"] == 1


# --- discovery ------------------------------------------------------------------------------
def test_discovery_endpoints(client: ScimClient) -> None:
    spc = client.get("/ServiceProviderConfig").body
    assert spc["patch"]["supported"] is True and spc["bulk"]["supported"] is False
    assert spc["filter"]["maxResults"] >= 1000
    assert spc["pagination"]["cursor"] is True and spc["pagination"]["index"] is True
    assert spc["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    schemas = client.get("/Schemas").body
    ids = {s["id"] for s in schemas["Resources"]}
    assert ids == {USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE}
    user_schema = client.get(f"/Schemas/{USER_SCHEMA}").body
    user_name = next(a for a in user_schema["attributes"] if a["name"] == "userName")
    assert user_name["uniqueness"] == "server" and user_name["caseExact"] is False
    password = next(a for a in user_schema["attributes"] if a["name"] == "password")
    assert password["returned"] == "never"
    types = client.get("/ResourceTypes").body
    assert {t["name"] for t in types["Resources"]} == {"User", "Group"}
    user_type = client.get("/ResourceTypes/User").body
    assert user_type["endpoint"] == "/Users"
    assert user_type["schemaExtensions"] == [{"schema": ENTERPRISE, "required": False}]
    assert_scim_error(client.get("/Schemas/urn:nope"), 404)


# --- extensions and membership --------------------------------------------------------------
def test_enterprise_and_custom_extensions_round_trip(client: ScimClient) -> None:
    custom = "urn:okta:scim:schemas:extension:custom:1.0:User"
    body = {
        **okta_create_body("ext@example.com"),
        "schemas": [USER_SCHEMA, ENTERPRISE, custom],
        ENTERPRISE: {
            "employeeNumber": "701984",
            "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"},
        },
        custom: {"badge": 42, "tags": ["a", "b"]},
    }
    created = client.post("/Users", body).body
    assert created["schemas"] == [USER_SCHEMA, ENTERPRISE, custom]
    assert created[ENTERPRISE]["employeeNumber"] == "701984"
    assert created[custom] == {"badge": 42, "tags": ["a", "b"]}
    found = client.get("/Users?" + filter_query(f'{ENTERPRISE}:employeeNumber eq "701984"')).body
    assert found["totalResults"] == 1
    patch = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Sales"}],
    }
    resp = client.patch(f"/Users/{created['id']}", patch).body
    assert resp[ENTERPRISE]["department"] == "Sales"
    assert resp[ENTERPRISE]["employeeNumber"] == "701984"


def test_members_must_exist(client: ScimClient) -> None:
    body = {"schemas": [GROUP_SCHEMA], "displayName": "G", "members": [{"value": "ghost-id"}]}
    err = assert_scim_error(client.post("/Groups", body), 400, "invalidValue")
    assert "ghost-id" in err["detail"]
    gid = client.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "G"}).body["id"]
    add = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": "ghost-id"}]}],
    }
    assert_scim_error(client.patch(f"/Groups/{gid}", add), 400, "invalidValue")


def test_deleting_a_user_removes_it_from_groups(client: ScimClient) -> None:
    users = make_users(client, 2)
    body = {
        "schemas": [GROUP_SCHEMA],
        "displayName": "G",
        "members": [{"value": u["id"]} for u in users],
    }
    gid = client.post("/Groups", body).body["id"]
    assert client.delete(f"/Users/{users[0]['id']}").status == 204
    members = client.get(f"/Groups/{gid}").body["members"]
    assert [m["value"] for m in members] == [users[1]["id"]]
    by_member = client.get("/Groups?" + filter_query(f'members.value eq "{users[1]["id"]}"'))
    assert by_member.body["totalResults"] == 1


def test_nested_group_members(client: ScimClient) -> None:
    inner = client.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Inner"}).body
    outer = client.post(
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "Outer", "members": [{"value": inner["id"]}]},
    ).body
    assert outer["members"][0]["type"] == "Group"
    assert outer["members"][0]["$ref"].endswith(f"/Groups/{inner['id']}")
    assert outer["members"][0]["display"] == "Inner"


def test_filter_on_dates_and_groups(client: ScimClient) -> None:
    user = make_users(client, 1)[0]
    later = client.get("/Users?" + filter_query('meta.lastModified gt "2020-01-01T00:00:00Z"'))
    assert later.body["totalResults"] == 1
    future = client.get("/Users?" + filter_query('meta.created gt "2999-01-01T00:00:00Z"'))
    assert future.body["totalResults"] == 0
    gid = client.post(
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "G", "members": [{"value": user["id"]}]},
    ).body["id"]
    in_group = client.get("/Users?" + filter_query(f'groups.value eq "{gid}"'))
    assert in_group.body["totalResults"] == 1


def test_attributes_apply_to_write_responses(client: ScimClient) -> None:
    resp = client.post("/Users?attributes=userName", okta_create_body("w@example.com"))
    assert resp.status == 201 and set(resp.body) == {"schemas", "id", "userName"}
    assert resp.header("Location").endswith(resp.body["id"])
    uid = resp.body["id"]
    patch = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "value": {"title": "T"}}]}
    patched = client.patch(f"/Users/{uid}?excludedAttributes=emails,name", patch).body
    assert patched["title"] == "T" and "emails" not in patched and "name" not in patched


# --- findings of the black-box conformance review ---------------------------------------------
def test_huge_start_index_is_an_empty_page_not_500(client: ScimClient) -> None:
    make_users(client, 2)
    resp = client.get("/Users?startIndex=99999999999999999999999999&count=5")
    assert resp.status == 200 and resp.body["Resources"] == []
    assert resp.body["totalResults"] == 2


def test_user_etag_changes_with_group_membership(client: ScimClient) -> None:
    user = make_users(client, 1)[0]
    etag = client.get(f"/Users/{user['id']}").header("ETag")
    client.post(
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "G", "members": [{"value": user["id"]}]},
    )
    after = client.get(f"/Users/{user['id']}", headers={"If-None-Match": etag})
    assert after.status == 200 and after.header("ETag") != etag
    assert after.body["meta"]["version"] == after.header("ETag")
    patch = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "value": {"title": "X"}}]}
    stale = client.patch(f"/Users/{user['id']}", patch, headers={"If-Match": etag})
    assert_scim_error(stale, 412)
    fresh = client.patch(f"/Users/{user['id']}", patch, headers={"If-Match": after.header("ETag")})
    assert fresh.status == 200


def test_nested_groups_show_as_indirect(client: ScimClient) -> None:
    user = make_users(client, 1)[0]
    inner = client.post(
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "Inner", "members": [{"value": user["id"]}]},
    ).body
    client.post(
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "Outer", "members": [{"value": inner["id"]}]},
    )
    groups = client.get(f"/Users/{user['id']}").body["groups"]
    assert [(g["display"], g["type"]) for g in groups] == [
        ("Inner", "direct"),
        ("Outer", "indirect"),
    ]


def test_unknown_attributes_are_ignored(client: ScimClient) -> None:
    body = {**okta_create_body("unk@example.com"), "unknownAttr": "x"}
    body["emails"][0]["bogus"] = 1
    created = client.post("/Users", body).body
    assert "unknownAttr" not in created and "bogus" not in created["emails"][0]


def test_more_than_one_primary_is_invalid(client: ScimClient) -> None:
    body = okta_create_body("pp@example.com")
    body["emails"].append({"value": "other@example.com", "primary": True})
    assert_scim_error(client.post("/Users", body), 400, "invalidValue")


def test_head_and_gzip_refusal(server) -> None:
    c = ScimClient(server.base_url, token=TOKEN)
    make_users(c, 20)
    head = c.request("HEAD", "/Users")
    assert head.status == 200 and head.raw == b""
    c.close()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request(
        "GET",
        "/scim/v2/Users",
        headers={"Authorization": f"Bearer {TOKEN}", "Accept-Encoding": "gzip;q=0, identity"},
    )
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    assert resp.getheader("Content-Encoding") is None and json.loads(raw)["totalResults"] == 20


def test_filter_on_discovery_is_403(client: ScimClient) -> None:
    assert_scim_error(client.get("/Schemas?" + filter_query('id eq "x"')), 403)


def test_junk_forwarded_host_is_not_reflected(client: ScimClient) -> None:
    resp = client.post(
        "/Users",
        okta_create_body("h2@example.com"),
        headers={"X-Forwarded-Host": 'evil"><script>'},
    )
    assert "<script>" not in resp.body["meta"]["location"]
