"""``scim-desktop --self-test``: the command as a user runs it, and its checks against real
servers (passing, and failing with a clear message)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scim_desktop import selftest
from scim_desktop.config import AuthConfig, ServerConfig
from scim_desktop.core.faults import parse_fault_spec
from scim_desktop.server.runner import ServerThread
from tests.conftest import TOKEN
from tests.scim_client import ScimClient


def _run_command(tmp_path: Path, **env_overrides: str) -> subprocess.CompletedProcess[str]:
    """``python -m scim_desktop --self-test`` with no display, and with home, data and
    settings folders of its own, so what it writes there can be checked."""
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    for name in ("home", "data", "config"):
        (tmp_path / name).mkdir()
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        **env_overrides,
    )
    return subprocess.run(
        [sys.executable, "-m", "scim_desktop", "--self-test"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_self_test_command_passes_offscreen_and_writes_nothing_of_the_users(
    tmp_path: Path,
) -> None:
    result = _run_command(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("SCIM Desktop ")
    assert lines[-1].startswith("Self-test passed: 12 checks")
    assert "FAIL" not in result.stdout
    assert any("open the main window (offscreen)" in line for line in lines)
    # The user's database, token, log and settings are never touched.
    assert not (tmp_path / "data" / "scim-desktop").exists()
    assert not (tmp_path / "config" / "SCIM Desktop").exists()
    assert not list(tmp_path.glob("*.json"))


def test_self_test_command_fails_clearly_when_qt_cannot_start(tmp_path: Path) -> None:
    result = _run_command(tmp_path, QT_QPA_PLATFORM="nosuchplatform")
    assert result.returncode == 1, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("Self-test FAILED: load Qt: Qt cannot start")
    assert "no Qt platform plugin 'nosuchplatform'" in last


def test_http_checks_pass_against_a_real_server(server: ServerThread, client: ScimClient) -> None:
    out = io.StringIO()
    report = selftest.Report(out)
    selftest.http_checks(selftest.ScimHttp(server.base_url, f"Bearer {TOKEN}"), report)
    assert report.passed == 6
    assert out.getvalue().count("  ok    ") == 6
    # The user it made is gone again.
    assert client.get("/Users").body["totalResults"] == 0


def test_http_checks_name_the_failing_step_and_status(tmp_path: Path) -> None:
    config = ServerConfig(
        host="127.0.0.1",
        port=0,
        db_path=tmp_path / "db.json",
        auth=AuthConfig("bearer", token=TOKEN),
        faults=(parse_fault_spec("status=503,method=POST,path=/Users"),),
    )
    server = ServerThread(config)
    server.start()
    try:
        out = io.StringIO()
        with pytest.raises(selftest.SelfTestError) as info:
            selftest.http_checks(
                selftest.ScimHttp(server.base_url, f"Bearer {TOKEN}"), selftest.Report(out)
            )
    finally:
        server.stop()
    assert str(info.value).startswith("create a user (POST /Users): POST /Users answered 503")
    assert "expected 201" in str(info.value)
    assert "  FAIL  create a user" in out.getvalue()


def test_http_checks_fail_with_a_wrong_token(server: ServerThread) -> None:
    with pytest.raises(selftest.SelfTestError, match="answered 401, expected 201"):
        selftest.http_checks(
            selftest.ScimHttp(server.base_url, "Bearer wrong-token"),
            selftest.Report(io.StringIO()),
        )


def test_run_self_test_in_process_opens_the_window(qapp: object) -> None:
    out = io.StringIO()
    assert selftest.run_self_test(out) == selftest.EXIT_OK, out.getvalue()
    assert "close the window; its server stops" in out.getvalue()
