"""Okta's membership PATCHes on a large group, on a real server with real files.

A group above ``group_patch.MIN_MEMBERS`` takes the planned path (core/group_patch.py); these
tests check what a client sees (members, ``meta.version``, ETag, the users' ``groups``), what
a restart reads back (the journal alone, as a crash leaves it, and after a fold), and that
``excludedAttributes=members`` on a PATCH leaves the members out of the answer only.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scim_desktop.config import AuthConfig, ServerConfig
from scim_desktop.core.group_patch import MIN_MEMBERS
from scim_desktop.server.runner import ServerThread
from tests.conftest import TOKEN, RecordingSink
from tests.scim_client import ScimClient

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
USERS = MIN_MEMBERS + 20


def start(db_path: Path) -> ServerThread:
    config = ServerConfig(
        host="127.0.0.1", port=0, db_path=db_path, auth=AuthConfig("bearer", token=TOKEN)
    )
    server = ServerThread(config, RecordingSink())
    server.start()
    return server


def ops(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(operations)}


@pytest.fixture
def world(server: ServerThread, client: ScimClient) -> Iterator[tuple[list[str], str]]:
    users = []
    for i in range(USERS):
        resp = client.post(
            "/Users",
            {"schemas": [USER_SCHEMA], "userName": f"u{i}@example.com", "displayName": f"U {i}"},
        )
        assert resp.status == 201
        users.append(resp.body["id"])
    resp = client.post(
        "/Groups",
        {
            "schemas": [GROUP_SCHEMA],
            "displayName": "Everyone",
            "members": [{"value": u} for u in users[: MIN_MEMBERS + 4]],
        },
    )
    assert resp.status == 201
    yield users, resp.body["id"]


def members_of(client: ScimClient, gid: str) -> list[str]:
    resp = client.get(f"/Groups/{gid}")
    assert resp.status == 200
    return [m["value"] for m in resp.body["members"]]


def snapshot(client: ScimClient, gid: str, users: list[str]) -> Any:
    group = client.get(f"/Groups/{gid}").body
    groups = {u: client.get(f"/Users/{u}").body.get("groups", []) for u in users}
    return group, groups


def snapshot_on_restart(db_path: Path, gid: str, users: list[str]) -> tuple[Any, str]:
    """A server started on ``db_path`` (replaying its journal): its :func:`snapshot` and base
    URL; the server is stopped again."""
    server = start(db_path)
    try:
        client = ScimClient(server.base_url, token=TOKEN)
        try:
            return snapshot(client, gid, users), server.base_url
        finally:
            client.close()
    finally:
        server.stop()


def test_okta_sequence_gives_the_members_versions_and_replays(
    server: ServerThread, client: ScimClient, world: tuple[list[str], str], tmp_path: Path
) -> None:
    users, gid = world
    path = f"/Groups/{gid}"
    expected = users[: MIN_MEMBERS + 4]
    version = 1
    rng = random.Random(7)
    for step in range(30):
        outside = [u for u in users if u not in expected]
        if outside and (step % 3 == 0 or len(expected) < MIN_MEMBERS + 2):
            new = rng.choice(outside)
            body = ops({"op": "add", "path": "members", "value": [{"value": new}]})
            expected = [*expected, new]
        else:
            gone = rng.choice(expected)
            body = ops({"op": "remove", "path": f'members[value eq "{gone}"]'})
            expected = [m for m in expected if m != gone]
        resp = client.patch(path, body)
        assert resp.status == 200, resp.body
        version += 1
        assert resp.body["meta"]["version"] == f'W/"{version}"' == resp.header("ETag")
        assert [m["value"] for m in resp.body["members"]] == expected
        assert all(m["$ref"].endswith(f"/Users/{m['value']}") for m in resp.body["members"])
        # Okta's follow-up: the same name again changes nothing, not even the version.
        resp = client.patch(
            path, ops({"op": "replace", "value": {"id": gid, "displayName": "Everyone"}})
        )
        assert resp.status == 200 and resp.body["meta"]["version"] == f'W/"{version}"'
    assert members_of(client, gid) == expected
    inside, outside_user = expected[0], next(u for u in users if u not in expected)
    assert [g["value"] for g in client.get(f"/Users/{inside}").body["groups"]] == [gid]
    assert "groups" not in client.get(f"/Users/{outside_user}").body
    # A rename reaches every member's groups.
    resp = client.patch(path, ops({"op": "replace", "value": {"id": gid, "displayName": "All"}}))
    assert resp.status == 200 and resp.body["displayName"] == "All"
    assert client.get(f"/Users/{inside}").body["groups"][0]["display"] == "All"
    before = snapshot(client, gid, users)

    # What a crash now leaves: the data file and the journal segments, copied as they are
    # (every answer above came after its fsync).
    db = server.config.db_path
    crashed = tmp_path / "crashed" / db.name
    crashed.parent.mkdir()
    for f in db.parent.iterdir():
        if f.name.startswith(db.name) and not f.name.endswith(".lock"):
            shutil.copy2(f, crashed.parent / f.name)
    segments = list(crashed.parent.glob(f"{db.name}.journal.*"))
    assert segments, "the changes are in the journal"
    # One-member changes are journalled as differences (store/journal.py "members").
    assert any(b'"op":"members"' in s.read_bytes() for s in segments)
    after, replayed_url = snapshot_on_restart(crashed, gid, users)
    assert after == rebased(before, server.base_url, replayed_url)

    # A clean stop folds the journal into the data file; the restart reads the same.
    client.close()
    server.stop()
    again, restarted_url = snapshot_on_restart(db, gid, users)
    assert again == rebased(before, server.base_url, restarted_url)


def rebased(value: Any, old: str, new: str) -> Any:
    """``value`` with the base URL (in $ref and meta.location) of one server replaced."""
    if isinstance(value, dict):
        return {k: rebased(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [rebased(v, old, new) for v in value]
    if isinstance(value, tuple):
        return tuple(rebased(v, old, new) for v in value)
    return value.replace(old, new) if isinstance(value, str) else value


def test_excluded_members_on_patch(client: ScimClient, world: tuple[list[str], str]) -> None:
    users, gid = world
    spare = users[-1]
    resp = client.patch(
        f"/Groups/{gid}?excludedAttributes=members",
        ops({"op": "add", "path": "members", "value": [{"value": spare, "display": "x"}]}),
    )
    assert resp.status == 200
    assert "members" not in resp.body and resp.body["displayName"] == "Everyone"
    assert resp.body["meta"]["version"] == 'W/"2"'
    assert members_of(client, gid)[-1] == spare
    resp = client.patch(
        f"/Groups/{gid}?attributes=displayName",
        ops({"op": "remove", "path": f'members[value eq "{spare}"]'}),
    )
    assert resp.status == 200 and "members" not in resp.body
    assert spare not in members_of(client, gid)
    resp = client.patch(
        f"/Groups/{gid}?attributes=members.value",
        ops({"op": "add", "path": "members", "value": [{"value": spare}]}),
    )
    assert resp.status == 200 and resp.body["members"][-1] == {"value": spare}


def test_refused_changes_store_nothing(client: ScimClient, world: tuple[list[str], str]) -> None:
    """Near misses of Okta's shapes get the general engine's errors and change nothing."""
    users, gid = world
    before = client.get(f"/Groups/{gid}").body
    outside = users[-1]
    # Removing a non-member by value filter is no error (the general engine's choice: Okta
    # retries removals), and changes nothing, not even the version.
    resp = client.patch(
        f"/Groups/{gid}", ops({"op": "remove", "path": f'members[value eq "{outside}"]'})
    )
    assert resp.status == 200 and resp.body == before
    for body, status in [
        (ops({"op": "add", "path": "members", "value": [{"value": "nobody"}]}), 400),
        (ops({"op": "add", "path": "members", "value": [{"value": gid}]}), 400),
        (ops({"op": "replace", "value": {"id": gid, "displayName": ""}}), 400),
    ]:
        resp = client.patch(f"/Groups/{gid}", body)
        assert resp.status == status, resp.body
        assert resp.body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    resp = client.patch(f"/Groups/{gid}?attributes=nope[", ops({"op": "remove", "path": "x"}))
    assert resp.status == 400
    assert client.get(f"/Groups/{gid}").body == before
