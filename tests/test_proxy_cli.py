"""The real ``scim-desktop proxy`` command, started as a subprocess, in front of a scripted
upstream on a real socket."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scim_desktop.cli import build_parser
from scim_desktop.options import make_config
from tests.scim_client import ScimClient
from tests.server.proxy_fixtures import ScriptedUpstream, Seen
from tests.test_cli import BASE_URL_RE, Served

SECRET = "upstream-secret-0123456789"


@pytest.fixture
def scripted() -> Iterator[ScriptedUpstream]:
    upstream = ScriptedUpstream().start()
    yield upstream
    upstream.stop()


def start_proxy(served: list[Served], *args: str) -> Served:
    s = Served(list(args), command="proxy")
    served.append(s)
    return s


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scim_desktop", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_proxy_banner_and_text_log_in_swap_mode(
    served: list[Served], scripted: ScriptedUpstream, tmp_path: Path
) -> None:
    s = start_proxy(
        served,
        "--upstream",
        scripted.url + "/",
        "--upstream-token",
        SECRET,
        "--port",
        "0",
        "--db",
        str(tmp_path / "p.json"),
        "--token",
        "proxy-token-abcdef",
    )
    base = s.base_url()
    s.wait_for(re.compile(r"(Stop with Ctrl\+C)"))
    banner = "\n".join(s.stdout_lines)
    assert "proxy mode" in banner
    assert f"Upstream:  {scripted.url} " in banner
    assert "Upstream auth: Authorization: Bearer *** (--upstream-token)" in banner
    assert "Authorization: Bearer proxy-token-abcdef" in banner  # the user pastes it into Okta
    assert "insecure" not in banner.lower()
    answer = ScimClient(base, token="proxy-token-abcdef").get("/Users?count=1&startIndex=1")
    assert answer.status == 200
    assert scripted.seen[0].header("Authorization") == f"Bearer {SECRET}"
    line = s.wait_for(re.compile(r"(GET\s+/scim/v2/Users.*)"), "stdout")
    assert re.search(r" 200 [\d.]+ms \(upstream 200 in [\d.]+ms\)", line), line
    assert s.stop() == 0
    everything = "\n".join(s.stdout_lines + s.stderr_lines)
    assert SECRET not in everything


def test_proxy_transparent_jsonl_and_insecure_warning(
    served: list[Served], scripted: ScriptedUpstream, tmp_path: Path
) -> None:
    def answer(seen: Seen) -> tuple[int, list[tuple[str, str]], bytes]:
        return 200, [("Content-Type", "application/scim+json")], b'{"totalResults":"1"}'

    scripted.answer = answer
    s = start_proxy(
        served,
        "--upstream",
        scripted.url,
        "--insecure-upstream",
        "--port",
        "0",
        "--db",
        str(tmp_path / "p.json"),
        "--log",
        "jsonl",
    )
    base = s.wait_for(BASE_URL_RE, "stderr")
    s.wait_for(re.compile(r"(Stop with Ctrl\+C)"), "stderr")
    banner = "\n".join(s.stderr_lines)
    assert "the client's own Authorization, passed through (transparent)" in banner
    assert "none of its own" in banner
    assert "--insecure-upstream has no effect: the upstream is plain http" in banner
    assert not (tmp_path / "p.token").exists()  # transparent: no credential of ours
    client = ScimClient(base, token="the-clients-own-token")
    assert client.get("/Users").status == 200
    assert scripted.seen[0].header("Authorization") == "Bearer the-clients-own-token"
    s.wait_for(re.compile(r"(\"upstream_status\")"), "stdout")
    assert s.stop() == 0
    first, line = [json.loads(x) for x in s.stdout_lines]
    assert first == {
        "event": "upstream",
        "url": scripted.url,
        "up": True,
        "detail": "answered HTTP 200",
    }
    assert line["upstream_status"] == 200 and line["upstream_error"] is None
    assert line["proxy_ms"] == pytest.approx(line["duration_ms"] - line["upstream_ms"], abs=0.01)
    assert line["request"]["headers"]["Authorization"] == "Bearer ***"


def test_proxy_upstream_down_is_logged_once(served: list[Served], tmp_path: Path) -> None:
    upstream = ScriptedUpstream().start()
    url = upstream.url
    upstream.stop()  # nothing listens there any more
    s = start_proxy(served, "--upstream", url, "--port", "0", "--db", str(tmp_path / "p.json"))
    client = ScimClient(s.base_url())
    for _ in range(3):
        assert client.get("/Users").status == 502
    s.wait_for(re.compile(r"(UPSTREAM: unreachable.*)"), "stdout")
    time.sleep(0.3)
    assert s.stop() == 0
    down = [x for x in s.stdout_lines if x.startswith("UPSTREAM ")]
    assert down == [f"UPSTREAM {url} is DOWN: " + down[0].split(": ", 1)[1]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: --upstream"),
        (["--upstream", "ftp://x"], "give an http:// or https:// URL"),
        (["--upstream", "http://x/?q=1"], "must not have a query or fragment"),
        (["--upstream", "http://u:p@x/"], "use --upstream-basic"),
        (["--upstream", "http://x", "--token", "t"], "need an upstream credential"),
        (["--upstream", "http://x", "--oauth"], "need an upstream credential"),
        (
            ["--upstream", "http://x", "--upstream-token", "a", "--upstream-basic", "a:b"],
            "not allowed with argument",
        ),
        (["--upstream", "http://x", "--upstream-basic", "nocolon"], "USER:PASS"),
        (["--upstream", "http://x", "--upstream-header", "novalue"], '"Name: value"'),
        (["--upstream", "http://x", "--upstream-header", "Host: y"], "cannot set Host"),
        (["--upstream", "http://x", "--catalog", "c.json"], "--catalog is for the mock server"),
    ],
)
def test_proxy_usage_errors_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    result = run("proxy", "--port", "0", "--db", str(tmp_path / "p.json"), *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_no_auth_with_an_upstream_credential_is_warned_about(
    served: list[Served], scripted: ScriptedUpstream, tmp_path: Path
) -> None:
    s = start_proxy(
        served,
        "--upstream",
        scripted.url,
        "--upstream-basic",
        f"svc:{SECRET}",
        "--no-auth",
        "--port",
        "0",
        "--db",
        str(tmp_path / "p.json"),
    )
    s.wait_for(re.compile(r"(Stop with Ctrl\+C)"))
    banner = "\n".join(s.stdout_lines)
    assert "WARNING: --no-auth with an upstream credential: anyone who can reach" in banner
    assert "HTTP Basic, user 'svc', password *** (--upstream-basic)" in banner
    assert SECRET not in banner
    assert s.stop() == 0


def test_upstream_options_reach_the_config_for_gui_and_serve_refuses_them(
    tmp_path: Path,
) -> None:
    parser = build_parser()
    args = parser.parse_args(
        [
            "gui",
            "--db",
            str(tmp_path / "g.json"),
            "--upstream",
            "https://scim.example.com/v2/",
            "--upstream-basic",
            "svc:pw-1234",
            "--insecure-upstream",
        ]
    )
    config = make_config(args)
    assert config.upstream is not None
    assert config.upstream.url == "https://scim.example.com/v2"
    assert config.upstream.basic == ("svc", "pw-1234") and config.upstream.insecure
    assert config.auth.mode == "bearer"  # swap mode: the proxy's own generated token
    plain = make_config(parser.parse_args(["gui", "--db", str(tmp_path / "g.json")]))
    assert plain.upstream is None
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--upstream", "http://x"])
