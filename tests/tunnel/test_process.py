"""The real process management, driven against stand-in tunnel tools (no internet)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scim_desktop.tunnel.process import TunnelError, TunnelProcess, TunnelToolMissing
from scim_desktop.tunnel.providers import get_provider
from tests.tunnel.stand_ins import (
    CLOUDFLARED_HOST,
    CLOUDFLARED_NO_INTERNET,
    CLOUDFLARED_OUTPUT,
    LHR_HOST,
    LOCALHOST_RUN_JSON,
    NGROK_HOST,
    NGROK_NO_AUTHTOKEN,
    NGROK_OUTPUT,
    alive,
    stand_in_run,
    wait_gone,
    write_stand_in,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="stand-ins are POSIX scripts")


@pytest.fixture
def tunnels():
    started: list[TunnelProcess] = []
    yield started
    for t in started:
        t.stop(grace=0.5)


@pytest.mark.parametrize(
    ("provider", "name", "output", "stream", "host"),
    [
        ("cloudflared", "cloudflared", CLOUDFLARED_OUTPUT, "stderr", CLOUDFLARED_HOST),
        ("ngrok", "ngrok", NGROK_OUTPUT, "stdout", NGROK_HOST),
        ("localhost.run", "ssh", LOCALHOST_RUN_JSON, "stdout", LHR_HOST),
    ],
)
def test_each_tool_is_started_read_and_stopped(
    tmp_path: Path, tunnels, provider, name, output, stream, host
) -> None:
    tool = write_stand_in(tmp_path, name, output, stream=stream)
    tunnel = TunnelProcess(get_provider(provider), 8123, tool_path=tool)
    tunnels.append(tunnel)
    tunnel.spawn()
    assert tunnel.wait_for_url(10) == f"https://{host}"
    run = stand_in_run(tool)
    assert run["argv"][1:] == get_provider(provider).command(str(tool), 8123)[1:]
    assert run["pid"] == tunnel.pid and alive(tunnel.pid)
    # Its own process group, so stopping it reaches anything it started.
    assert os.getpgid(tunnel.pid) == tunnel.pid != os.getpgid(0)
    tunnel.stop()
    assert not alive(run["pid"])
    assert tunnel.returncode is not None


def test_tool_found_on_path(tmp_path: Path, tunnels, monkeypatch) -> None:
    write_stand_in(tmp_path / "bin", "cloudflared", CLOUDFLARED_OUTPUT, stream="stderr")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    tunnel = TunnelProcess(get_provider("cloudflared"), 8123)
    tunnels.append(tunnel)
    tunnel.spawn()
    assert tunnel.wait_for_url(10) == f"https://{CLOUDFLARED_HOST}"


def test_tool_path_may_be_the_folder_holding_it(tmp_path: Path, tunnels) -> None:
    write_stand_in(tmp_path / "tools", "ngrok", NGROK_OUTPUT)
    tunnel = TunnelProcess(get_provider("ngrok"), 8123, tool_path=tmp_path / "tools")
    tunnels.append(tunnel)
    tunnel.spawn()
    assert tunnel.wait_for_url(10) == f"https://{NGROK_HOST}"


def test_missing_tool_says_which_and_how_to_get_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no tools at all
    for provider, tool in (
        ("cloudflared", "cloudflared"),
        ("ngrok", "ngrok"),
        ("localhost.run", "ssh"),
    ):
        with pytest.raises(TunnelToolMissing) as info:
            TunnelProcess(get_provider(provider), 8123).spawn()
        message = str(info.value)
        assert f"{tool} was not found on PATH" in message and "--tunnel-path" in message
        assert "never downloads" in message
    with pytest.raises(TunnelToolMissing, match="does not exist"):
        TunnelProcess(get_provider("ngrok"), 1, tool_path=tmp_path / "nope").spawn()
    not_executable = tmp_path / "ngrok"
    not_executable.write_text("#!/bin/sh\n")
    with pytest.raises(TunnelToolMissing, match="not executable"):
        TunnelProcess(get_provider("ngrok"), 1, tool_path=not_executable).spawn()


def test_tool_that_exits_early_shows_its_last_output(tmp_path: Path, tunnels) -> None:
    tool = write_stand_in(tmp_path, "ngrok", NGROK_NO_AUTHTOKEN, then="exit", exit_code=1)
    tunnel = TunnelProcess(get_provider("ngrok"), 8123, tool_path=tool)
    tunnels.append(tunnel)
    tunnel.spawn()
    with pytest.raises(TunnelError) as info:
        tunnel.wait_for_url(10)
    message = str(info.value)
    assert "ngrok exited (code 1) before printing a public URL" in message
    assert "ngrok config add-authtoken" in message  # the explanation
    assert "session closing" in message  # the last output lines
    assert "\n" not in message


def test_cloudflared_without_internet(tmp_path: Path, tunnels) -> None:
    tool = write_stand_in(
        tmp_path, "cloudflared", CLOUDFLARED_NO_INTERNET, stream="stderr", then="exit", exit_code=1
    )
    tunnel = TunnelProcess(get_provider("cloudflared"), 8123, tool_path=tool)
    tunnels.append(tunnel)
    tunnel.spawn()
    with pytest.raises(TunnelError, match=r"could not reach trycloudflare\.com"):
        tunnel.wait_for_url(10)


def test_tool_that_never_prints_a_url_times_out(tmp_path: Path, tunnels) -> None:
    tool = write_stand_in(
        tmp_path,
        "cloudflared",
        "2024-05-01T10:00:00Z INF Requesting new quick Tunnel on trycloudflare.com...",
        stream="stderr",
    )
    tunnel = TunnelProcess(get_provider("cloudflared"), 8123, tool_path=tool)
    tunnels.append(tunnel)
    tunnel.spawn()
    started = time.monotonic()
    with pytest.raises(TunnelError) as info:
        tunnel.wait_for_url(0.5)
    assert time.monotonic() - started < 5
    assert "printed no public URL within 0.5 s" in str(info.value)
    assert "Requesting new quick Tunnel" in str(info.value)
    pid = tunnel.pid
    assert alive(pid)  # left running for the caller to stop
    tunnel.stop()
    assert not alive(pid)


def test_stubborn_tool_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    tool = tmp_path / "cloudflared"
    tool.write_text(
        f"#!{sys.executable}\n"
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"sys.stderr.write('INF |  https://{CLOUDFLARED_HOST}  |\\n'); sys.stderr.flush()\n"
        "time.sleep(3600)\n"
    )
    tool.chmod(0o755)
    tunnel = TunnelProcess(get_provider("cloudflared"), 8123, tool_path=tool)
    tunnel.spawn()
    tunnel.wait_for_url(10)
    pid = tunnel.pid
    tunnel.stop(grace=0.3)
    assert not alive(pid)


def test_exit_is_reported_to_the_callback(tmp_path: Path) -> None:
    tool = write_stand_in(
        tmp_path,
        "ssh",
        LOCALHOST_RUN_JSON + "Connection to localhost.run closed by remote host.",
        then="exit",
        exit_code=255,
    )
    ended: list[TunnelProcess] = []
    tunnel = TunnelProcess(
        get_provider("localhost.run"), 8123, tool_path=tool, on_exit=ended.append
    )
    tunnel.spawn()
    tunnel.wait_for_url(10)
    deadline = time.monotonic() + 10
    while not ended and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ended == [tunnel] and tunnel.returncode == 255
    assert "closed by remote host" in tunnel.exit_message()
    tunnel.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_tool_dies_with_a_parent_that_is_killed(tmp_path: Path) -> None:
    """kill -9 of the app leaves no tunnel behind: the kernel ends the child."""
    tool = write_stand_in(tmp_path, "cloudflared", CLOUDFLARED_OUTPUT, stream="stderr")
    script = (
        "import json, os, signal, sys\n"
        "from scim_desktop.tunnel.process import TunnelProcess\n"
        "from scim_desktop.tunnel.providers import get_provider\n"
        f"t = TunnelProcess(get_provider('cloudflared'), 8123, tool_path={str(tool)!r})\n"
        "t.spawn(); t.wait_for_url(10)\n"
        "print(json.dumps({'child': t.pid}), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    parent = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert parent.returncode == -9, parent.stderr
    child = json.loads(parent.stdout)["child"]
    assert wait_gone(child, 10), f"tunnel child {child} outlived its killed parent"
