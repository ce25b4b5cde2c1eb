"""The data folder is 0700 and every file beside the data 0600, also those an older version
left readable by others; what cannot be changed is reported once and never stops the server.

Real servers and real files; POSIX permission bits only (Windows decides by ACLs)."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from scim_desktop.config import (
    AuthConfig,
    ServerConfig,
    load_or_create_token,
    make_private_dir,
    token_path_for,
    write_private_file,
)
from scim_desktop.server.runner import ServerThread
from scim_desktop.store import private
from scim_desktop.store.journal import list_segments, segment_path
from scim_desktop.store.tinydb_store import AtomicOrjsonStorage
from tests.conftest import RecordingSink
from tests.scim_client import ScimClient

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """umask 0: whatever is not created private on purpose comes out 0666 / 0777."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def start(db_path: Path) -> tuple[ServerThread, str]:
    token = load_or_create_token(token_path_for(db_path))  # what `serve` and the GUI do
    config = ServerConfig(port=0, db_path=db_path, auth=AuthConfig("bearer", token=token))
    server = ServerThread(config, RecordingSink())
    server.start()
    return server, token


def test_a_new_data_folder_and_its_files_are_private(tmp_path: Path, loose_umask: None) -> None:
    db = tmp_path / "new" / "deeper" / "scim.json"
    server, token = start(db)
    try:
        client = ScimClient(server.base_url, token=token)
        body = {"schemas": [USER], "userName": "p@example.com", "password": "pw-123456"}
        assert client.post("/Users", body).status == 201
        client.close()
        segments = list_segments(db)
        assert segments  # the create is in a journal segment until the next fold
        while_running = {p.name: mode(p) for _, p in segments}
        lock = db.with_name(db.name + ".lock")
        assert mode(lock) == 0o600
    finally:
        server.stop()
    assert while_running and set(while_running.values()) == {0o600}, while_running
    assert mode(db.parent) == 0o700 and mode(db.parent.parent) == 0o700
    names = sorted(p.name for p in db.parent.iterdir())
    assert "scim.json" in names and "scim.token" in names and "scim.password-key" in names
    for name in names:
        assert mode(db.parent / name) == 0o600, name


def test_files_left_readable_by_an_older_version_are_made_private(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    db = folder / "scim.json"
    token_path_for(db).parent.mkdir()
    token_path_for(db).write_text("kept-token-0123456789\n")
    server, token = start(db)
    client = ScimClient(server.base_url, token=token)
    created = client.post("/Users", {"schemas": [USER], "userName": "old@example.com"})
    assert created.status == 201
    client.close()
    server.stop()
    # A journal segment renaming the user, as an older version left it after a crash.
    record = next(
        r
        for table in orjson.loads(db.read_bytes()).values()
        for r in table.values()
        if r.get("id") == created.body["id"]
    )
    entry = {"op": "put", "t": "User", "r": {**record, "userName": "renamed@example.com"}}
    segment_path(db, 1).write_bytes(orjson.dumps(entry) + b"\n")
    corrupt = folder / "scim.json.corrupt-20250101T000000Z"
    corrupt.write_bytes(b"{")
    for path in folder.iterdir():
        path.chmod(0o644)
    folder.chmod(0o755)

    server, token = start(db)
    try:
        assert token == "kept-token-0123456789"
        reply = ScimClient(server.base_url, token=token).get("/Users")
        assert reply.status == 200 and reply.body["totalResults"] == 1  # nothing lost
        assert reply.body["Resources"][0]["userName"] == "renamed@example.com"
    finally:
        server.stop()
    assert mode(folder) == 0o700
    names = {p.name for p in folder.iterdir()}
    assert {"scim.json", "scim.password-key", "scim.json.lock", "scim.token", corrupt.name} <= names
    for path in folder.iterdir():
        assert mode(path) == 0o600, path.name


def test_a_shared_folder_keeps_its_mode_but_the_data_files_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    notes = folder / "notes.txt"
    notes.write_text("not ours")
    notes.chmod(0o644)
    db = folder / "scim.json"
    db.write_bytes(b"{}")
    db.chmod(0o644)
    folder.chmod(0o755)
    server, _token = start(db)
    server.stop()
    assert mode(folder) == 0o755  # the user's own folder: not ours to change
    assert mode(notes) == 0o644
    assert mode(db) == 0o600 and mode(token_path_for(db)) == 0o600


def test_atomic_writes_create_their_files_private(tmp_path: Path, loose_umask: None) -> None:
    """The temporary file becomes the file (os.replace keeps its inode and mode): a final
    0600 under umask 0, replacing a 0644 file, shows it was created 0600, not narrowed
    after the data was in it."""
    key = tmp_path / "a" / "scim.password-key"
    key.parent.mkdir(mode=0o755)
    key.write_text("old")
    key.chmod(0o644)
    write_private_file(key, b"secret\n")
    assert key.read_bytes() == b"secret\n" and mode(key) == 0o600
    assert sorted(p.name for p in key.parent.iterdir()) == ["scim.password-key"]  # no temp

    data = tmp_path / "b" / "scim.json"
    storage = AtomicOrjsonStorage(data)
    assert mode(data.parent) == 0o700
    storage.write({"users": {}})
    assert mode(data) == 0o600


def test_make_private_dir(tmp_path: Path, loose_umask: None) -> None:
    made = tmp_path / "x" / "y"
    make_private_dir(made)
    assert mode(made) == 0o700 and mode(made.parent) == 0o700
    existing = tmp_path / "old"
    existing.mkdir(mode=0o755)
    make_private_dir(existing, tighten_existing=False)
    assert mode(existing) == 0o755
    make_private_dir(existing)
    assert mode(existing) == 0o700
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError):
        make_private_dir(tmp_path / "file")


@pytest.mark.skipif(
    getattr(os, "geteuid", lambda: -1)() != 0,  # (no geteuid on Windows)
    reason="needs root to give a folder to another user",
)
def test_what_cannot_be_changed_is_reported_once_and_the_server_still_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o755)
    db = folder / "scim.json"
    db.write_bytes(b"{}")
    db.chmod(0o644)
    nobody = 65534
    os.chown(folder, nobody, nobody)
    os.chown(db, nobody, nobody)
    private._warned.clear()
    caplog.set_level(logging.WARNING, logger="scim_desktop.store.private")
    for _ in range(2):
        server, token = start(db)
        try:
            assert ScimClient(server.base_url, token=token).get("/Users").status == 200
        finally:
            server.stop()
    warnings = [r.getMessage() for r in caplog.records if r.name == "scim_desktop.store.private"]
    about_folder = [w for w in warnings if str(folder) + " " in w]
    assert len(about_folder) == 1, warnings
    assert "belongs to another user" in about_folder[0]
    assert mode(folder) == 0o755  # left as it was
