"""``scim-desktop serve`` with --tunnel, --oauth and --tls, started as a real subprocess."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import signal
import ssl
from pathlib import Path

import pytest

from tests.scim_client import ScimClient
from tests.test_cli import start
from tests.tunnel.stand_ins import (
    CLOUDFLARED_HOST,
    CLOUDFLARED_OUTPUT,
    NGROK_NO_AUTHTOKEN,
    alive,
    stand_in_run,
    wait_gone,
    write_stand_in,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="stand-ins are POSIX scripts")
LOCAL_URL_RE = re.compile(r"Local URL:\s+(\S+)")


def one_error_line(s) -> str:
    lines = [line for line in s.stderr_lines if line.strip()]
    assert len(lines) == 1, lines
    assert "Traceback" not in "\n".join(s.stderr_lines)
    return lines[0]


def test_tunnel_banner_public_url_and_child_ends_with_the_server(served, tmp_path: Path) -> None:
    tool = write_stand_in(tmp_path / "bin", "cloudflared", CLOUDFLARED_OUTPUT, stream="stderr")
    s = start(
        served,
        *("--port", "0", "--db", str(tmp_path / "d.json"), "--token", "tok"),
        *("--tunnel", "cloudflared", "--tunnel-path", str(tool)),
    )
    public = s.base_url()
    assert public == f"https://{CLOUDFLARED_HOST}/scim/v2"
    local = s.wait_for(LOCAL_URL_RE)
    assert local.startswith("http://127.0.0.1:")
    pid = stand_in_run(tool)["pid"]
    assert any(f"pid {pid}" in line for line in s.stdout_lines)
    client = ScimClient(local, token="tok")
    created = client.post(
        "/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "t@x.io"}
    )
    assert created.header("Location").startswith(public + "/Users/")
    client.close()
    assert s.stop(signal.SIGTERM) == 0
    assert wait_gone(pid, 5), "the tunnel tool outlived scim-desktop serve"


def test_tunnel_child_ends_when_the_terminal_closes(served, tmp_path: Path) -> None:
    tool = write_stand_in(tmp_path, "cloudflared", CLOUDFLARED_OUTPUT, stream="stderr")
    s = start(
        served,
        *("--port", "0", "--db", str(tmp_path / "d.json"), "--no-auth"),
        *("--tunnel", "cloudflared", "--tunnel-path", str(tool)),
    )
    s.base_url()
    pid = stand_in_run(tool)["pid"]
    assert alive(pid)
    assert s.stop(signal.SIGHUP) == 0
    assert wait_gone(pid, 5)


def test_tunnel_child_ends_when_scim_desktop_is_killed(served, tmp_path: Path) -> None:
    if os.uname().sysname != "Linux":
        pytest.skip("PR_SET_PDEATHSIG is Linux-only")
    tool = write_stand_in(tmp_path, "cloudflared", CLOUDFLARED_OUTPUT, stream="stderr")
    s = start(
        served,
        *("--port", "0", "--db", str(tmp_path / "d.json"), "--no-auth"),
        *("--tunnel", "cloudflared", "--tunnel-path", str(tool)),
    )
    s.base_url()
    pid = stand_in_run(tool)["pid"]
    s.stop(signal.SIGKILL)
    assert wait_gone(pid, 10)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--tunnel", "cloudflared"], {"PATH": "{empty}"}, "cloudflared was not found on PATH"),
        (["--tunnel", "ngrok", "--tunnel-path", "{tmp}/nope"], {}, "does not exist"),
        (["--tunnel", "ngrok", "--tunnel-path", "{ngrok}"], {}, "ngrok config add-authtoken"),
    ],
)
def test_tunnel_failures_are_one_line_and_nothing_keeps_running(
    served, tmp_path: Path, args, env, message
) -> None:
    (tmp_path / "empty").mkdir()
    ngrok = write_stand_in(tmp_path, "ngrok", NGROK_NO_AUTHTOKEN, then="exit", exit_code=1)
    fill = {"{empty}": str(tmp_path / "empty"), "{tmp}": str(tmp_path), "{ngrok}": str(ngrok)}

    def sub(text: str) -> str:
        for key, value in fill.items():
            text = text.replace(key, value)
        return text

    s = start(
        served,
        *("--port", "0", "--db", str(tmp_path / "d.json"), "--no-auth"),
        *[sub(a) for a in args],
        env={k: sub(v) for k, v in env.items()},
    )
    rc = s.proc.wait(30)
    s.stop()
    error = "\n".join(line for line in s.stderr_lines if "error" in line)
    assert rc == 1 and message in error, s.stderr_lines
    assert "Traceback" not in "\n".join(s.stderr_lines)
    errors = [line for line in s.stderr_lines if line.startswith("scim-desktop: error")]
    assert len(errors) == 1


def test_oauth_banner_and_kept_client(served, tmp_path: Path) -> None:
    db = tmp_path / "data" / "d.json"
    s = start(
        served,
        "--port",
        "0",
        "--db",
        str(db),
        "--oauth",
        "--oauth-token-ttl",
        "60",
        "--log",
        "jsonl",
    )
    base = s.base_url()
    origin = base.removesuffix("/scim/v2")
    client_id = s.wait_for(re.compile(r"OAuth client ID:\s+(\S+)"))
    secret = s.wait_for(re.compile(r"OAuth client secret:\s+(\S+)"))
    assert s.wait_for(re.compile(r"Authorize URL:\s+(\S+)")) == f"{origin}/oauth/authorize"
    assert s.wait_for(re.compile(r"Token URL:\s+(\S+)")) == f"{origin}/oauth/token"
    state = db.with_name("d.oauth.json")
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    assert json.loads(state.read_text())["client_secret"] == secret
    # A script gets a token with client credentials and calls SCIM with it.
    conn = http.client.HTTPConnection("127.0.0.1", int(origin.rsplit(":", 1)[1]), timeout=10)
    conn.request(
        "POST",
        "/oauth/token",
        body=f"grant_type=client_credentials&client_id={client_id}&client_secret={secret}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    tokens = json.loads(conn.getresponse().read())
    conn.close()
    assert tokens["expires_in"] == 60
    assert ScimClient(base, token=tokens["access_token"]).get("/Users").status == 200
    assert ScimClient(base, token="nope").get("/Users").status == 401
    assert s.stop() == 0
    # The JSON log of the token request shows neither the secret nor the token.
    records = [json.loads(line) for line in s.stdout_lines]
    token_record = next(r for r in records if r["path"] == "/oauth/token")
    assert token_record["okta_step"] == "oauth_token_client_credentials"
    assert "client_secret=***" in token_record["request"]["body"]
    assert secret not in "\n".join(s.stdout_lines)
    assert tokens["access_token"] not in "\n".join(s.stdout_lines)
    # Restart: the same client, and the token still works.
    s2 = start(served, "--port", "0", "--db", str(db), "--oauth")
    base2 = s2.base_url()
    assert s2.wait_for(re.compile(r"OAuth client ID:\s+(\S+)")) == client_id
    assert ScimClient(base2, token=tokens["access_token"]).get("/Users").status == 200
    assert s2.stop() == 0


def test_tls_banner_fingerprint_matches_the_file(served, tmp_path: Path) -> None:
    db = tmp_path / "d.json"
    s = start(served, "--port", "0", "--db", str(db), "--token", "tok", "--tls")
    base = s.base_url()
    assert base.startswith("https://127.0.0.1:")
    fingerprint = s.wait_for(re.compile(r"TLS SHA-256:\s+(\S+)"))
    cert = tmp_path / "d.tls" / "cert.pem"
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    assert fingerprint == ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
    context = ssl.create_default_context(cafile=str(cert))
    conn = http.client.HTTPSConnection(
        "127.0.0.1", int(base.split(":")[2].split("/")[0]), context=context, timeout=10
    )
    conn.request("GET", "/scim/v2/Users", headers={"Authorization": "Bearer tok"})
    assert conn.getresponse().status == 200
    conn.close()
    assert s.stop() == 0


@pytest.mark.parametrize(
    ("args", "rc", "message"),
    [
        (["--tls-cert", "{tmp}/nope.pem", "--tls-key", "{tmp}/nope.key"], 1, "no such file"),
        (["--tls-cert", "{tmp}/nope.pem"], 2, "--tls-cert and --tls-key go together"),
        (["--oauth", "--token", "x"], 2, "cannot be combined"),
        (["--oauth-redirect-uri", "ftp://x/cb"], 2, "absolute http(s) URI"),
        (["--oauth-token-ttl", "0"], 2, "--oauth-token-ttl"),
        (["--tunnel-path", "/usr/bin/ssh"], 2, "--tunnel-path needs --tunnel"),
        (["--tunnel", "localhost.run", "--tls"], 2, "drop --tls"),
    ],
)
def test_bad_connect_settings_are_one_clear_line(served, tmp_path: Path, args, rc, message) -> None:
    s = start(
        served,
        *("--port", "0", "--db", str(tmp_path / "d.json")),
        *[a.replace("{tmp}", str(tmp_path)) for a in args],
    )
    assert s.proc.wait(20) == rc
    s.stop()
    line = one_error_line(s)
    assert message in line and line.startswith("scim-desktop: error:")
