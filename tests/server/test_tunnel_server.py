"""The tunnel as part of the server: public URLs while it is up, and it ends with the server."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from scim_desktop.config import AuthConfig, ServerConfig, TunnelConfig
from scim_desktop.server.runner import ServerStartError, ServerThread, TunnelStatus
from scim_desktop.tunnel.process import TunnelError
from tests.conftest import TOKEN
from tests.scim_client import ScimClient
from tests.server.test_okta_flows import okta_create_body
from tests.tunnel.stand_ins import (
    CLOUDFLARED_HOST,
    CLOUDFLARED_OUTPUT,
    NGROK_HOST,
    NGROK_OUTPUT,
    alive,
    stand_in_run,
    write_stand_in,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="stand-ins are POSIX scripts")
PUBLIC = f"https://{CLOUDFLARED_HOST}"


def start_server(db_path: Path, tunnel: TunnelConfig | None = None, sink=None) -> ServerThread:
    config = ServerConfig(
        host="127.0.0.1",
        port=0,
        db_path=db_path,
        auth=AuthConfig("bearer", token=TOKEN),
        tunnel=tunnel,
    )
    server = ServerThread(config, sink)
    server.start()
    return server


def test_tunnel_starts_with_the_server_and_ends_with_it(tmp_path: Path, db_path: Path) -> None:
    tool = write_stand_in(tmp_path / "bin", "cloudflared", CLOUDFLARED_OUTPUT, stream="stderr")
    server = start_server(db_path, TunnelConfig("cloudflared", str(tool), timeout=10))
    try:
        run = stand_in_run(tool)
        assert run["argv"][1:] == [
            "tunnel",
            "--url",
            f"http://127.0.0.1:{server.port}",
            "--no-autoupdate",
        ]
        status = server.tunnel_status()
        assert status.state == "up" and status.pid == run["pid"]
        assert server.public_base_url == f"{PUBLIC}/scim/v2"
        assert server.advertised_base_url == f"{PUBLIC}/scim/v2"
        assert server.base_url.startswith("http://127.0.0.1:")  # still the local one
        # A local request (Host 127.0.0.1) is told the public URL...
        client = ScimClient(server.base_url, token=TOKEN)
        created = client.post("/Users", okta_create_body("tunnel@example.com"))
        assert created.status == 201
        uid = created.body["id"]
        assert created.header("Location") == f"{PUBLIC}/scim/v2/Users/{uid}"
        assert created.body["meta"]["location"] == f"{PUBLIC}/scim/v2/Users/{uid}"
        # ...as is a request arriving through the tunnel (public Host, X-Forwarded-Proto).
        through = ScimClient(
            server.base_url,
            token=TOKEN,
            headers={"Host": CLOUDFLARED_HOST, "X-Forwarded-Proto": "https"},
        )
        got = through.get(f"/Users/{uid}")
        assert got.body["meta"]["location"] == f"{PUBLIC}/scim/v2/Users/{uid}"
        # A LAN client naming another host keeps its own URL.
        lan = ScimClient(server.base_url, token=TOKEN, headers={"Host": "laptop.lan:8080"})
        assert lan.get(f"/Users/{uid}").body["meta"]["location"].startswith("http://laptop.lan")
        # What the window shows uses the public URL too.
        snapshot = server.snapshot().result(5)
        assert snapshot["User"][0]["meta"]["location"].startswith(PUBLIC)
        assert snapshot["Group"] == []
        # A view asks only for its own kind (rendering 100,000 users twice was measurable).
        assert server.snapshot(("User",)).result(5).keys() == {"User"}
        for c in (client, through, lan):
            c.close()
    finally:
        server.stop()
    assert not alive(run["pid"]), "the tunnel tool outlived the server"
    assert server.tunnel_status().state == "off"


def test_tunnel_started_and_stopped_from_another_thread(tmp_path: Path, db_path: Path) -> None:
    tool = write_stand_in(tmp_path, "ngrok", NGROK_OUTPUT)
    server = start_server(db_path)
    seen: list[TunnelStatus] = []
    server.add_tunnel_listener(seen.append)
    try:
        assert server.public_base_url is None and server.tunnel_status().state == "off"
        base = server.start_tunnel("ngrok", str(tool), timeout=10).result(15)
        assert base == f"https://{NGROK_HOST}/scim/v2" == server.public_base_url
        pid = server.tunnel_status().pid
        assert stand_in_run(tool)["argv"][1:3] == ["http", f"127.0.0.1:{server.port}"]
        server.stop_tunnel().result(10)
        assert not alive(pid)
        assert server.public_base_url is None
        assert server.advertised_base_url == server.base_url
        assert [s.state for s in seen] == ["starting", "starting", "up", "off"]
    finally:
        server.stop()


def test_missing_tool_fails_the_start_with_one_clear_line(
    tmp_path: Path, db_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    config = ServerConfig(
        port=0, db_path=db_path, auth=AuthConfig("none"), tunnel=TunnelConfig("cloudflared")
    )
    server = ServerThread(config)
    with pytest.raises(ServerStartError) as info:
        server.start()
    assert "cloudflared was not found on PATH" in str(info.value)
    assert not server.running
    # The data file is free again: a new server can start on it.
    again = start_server(db_path)
    again.stop()


def test_start_tunnel_failure_is_reported_and_the_server_keeps_serving(
    tmp_path: Path, db_path: Path
) -> None:
    tool = write_stand_in(
        tmp_path, "cloudflared", "boom: cannot start", stream="stderr", then="exit", exit_code=3
    )
    server = start_server(db_path)
    try:
        with pytest.raises(TunnelError, match=r"exited \(code 3\).*boom: cannot start"):
            server.start_tunnel("cloudflared", str(tool), timeout=10).result(15)
        status = server.tunnel_status()
        assert status.state == "failed" and "boom" in status.error
        client = ScimClient(server.base_url, token=TOKEN)
        assert client.get("/Users").status == 200
        client.close()
    finally:
        server.stop()


def test_a_tunnel_that_dies_later_is_reported(tmp_path: Path, db_path: Path) -> None:
    tool = write_stand_in(
        tmp_path,
        "cloudflared",
        CLOUDFLARED_OUTPUT + '2024-05-01T10:00:09Z ERR Connection terminated error="lost"',
        stream="stderr",
        then="exit",
        exit_code=1,
        delay=0.05,
    )
    server = start_server(db_path, TunnelConfig("cloudflared", str(tool), timeout=10))
    try:
        deadline = time.monotonic() + 10
        while server.tunnel_status().state == "up" and time.monotonic() < deadline:
            time.sleep(0.02)
        status = server.tunnel_status()
        assert status.state == "failed" and "Connection terminated" in status.error
        assert server.public_base_url is None
        client = ScimClient(server.base_url, token=TOKEN)
        created = client.post("/Users", okta_create_body("after@example.com"))
        assert created.header("Location").startswith("http://127.0.0.1:")
        client.close()
    finally:
        server.stop()


def test_stopping_the_server_while_the_tunnel_starts(tmp_path: Path, db_path: Path) -> None:
    tool = write_stand_in(
        tmp_path, "cloudflared", "INF Requesting new quick Tunnel", stream="stderr"
    )
    server = start_server(db_path)
    future = server.start_tunnel("cloudflared", str(tool), timeout=30)
    pid = stand_in_run(tool)["pid"]
    server.stop()
    with pytest.raises(TunnelError):
        future.result(10)
    assert not alive(pid)
