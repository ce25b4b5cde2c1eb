"""The real ``scim-desktop serve`` command, started as a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.scim_client import ScimClient, filter_query
from tests.server.test_okta_flows import okta_create_body

BASE_URL_RE = re.compile(r"Base URL:\s+(\S+)")


class Served:
    """A running ``scim-desktop serve`` process and what it printed."""

    def __init__(
        self, args: list[str], env: dict[str, str] | None = None, command: str = "serve"
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scim_desktop", *([command] if command else []), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout_lines)),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr_lines)),
        ]
        for t in self._threads:
            t.daemon = True
            t.start()

    @staticmethod
    def _pump(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: re.Pattern[str], where: str = "any", timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sources = {"stdout": self.stdout_lines, "stderr": self.stderr_lines}
            pool = sources.values() if where == "any" else [sources[where]]
            for lines in pool:
                for line in list(lines):
                    m = pattern.search(line)
                    if m:
                        return m.group(1)
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the pumps finish
                break
            time.sleep(0.02)
        raise AssertionError(
            f"{pattern.pattern!r} not printed; stdout={self.stdout_lines} "
            f"stderr={self.stderr_lines} rc={self.proc.poll()}"
        )

    def base_url(self) -> str:
        return self.wait_for(BASE_URL_RE)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        for t in self._threads:
            t.join(5)
        return rc


def start(served: list[Served], *args: str, env: dict[str, str] | None = None) -> Served:
    s = Served(list(args), env)
    served.append(s)
    return s


def test_serve_jsonl_logs_only_json_on_stdout_and_stops_cleanly(served, tmp_path: Path) -> None:
    db = tmp_path / "d.json"
    s = start(served, "--port", "0", "--db", str(db), "--token", "tok", "--log", "jsonl")
    base = s.wait_for(BASE_URL_RE, "stderr")
    assert base.startswith("http://127.0.0.1:") and base.endswith("/scim/v2")
    client = ScimClient(base, token="tok")
    created = client.post("/Users", okta_create_body("cli@example.com"))
    assert created.status == 201
    uid = created.body["id"]
    client.patch(
        f"/Users/{uid}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "password", "value": "Sup3r-secret"}],
        },
    )
    client.close()
    t0 = time.monotonic()
    rc = s.stop()
    assert rc == 0 and time.monotonic() - t0 < 2.5
    records = [json.loads(line) for line in s.stdout_lines]
    assert [r["method"] for r in records] == ["POST", "PATCH"]
    first = records[0]
    for key in ("time", "method", "path", "query", "status", "duration_ms", "okta_step"):
        assert key in first
    assert first["status"] == 201 and first["path"] == "/scim/v2/Users"
    assert first["request"]["headers"]["Authorization"] == "Bearer ***"
    assert json.loads(first["request"]["body"])["password"] == "***"
    assert json.loads(first["response"]["body"])["id"] == uid
    assert "Sup3r-secret" not in "\n".join(s.stdout_lines)
    assert "Pl@ceholder" not in "\n".join(s.stdout_lines)
    # The data was flushed into the TinyDB file at stop.
    doc = json.loads(db.read_text())
    stored = [r for r in doc["Users"].values() if r["id"] == uid]
    assert stored and stored[0]["userName"] == "cli@example.com"


def test_serve_text_log_and_sigint(served, tmp_path: Path) -> None:
    s = start(served, "--port", "0", "--db", str(tmp_path / "d.json"), "--no-auth")
    base = s.base_url()
    client = ScimClient(base)
    assert client.get("/Users?startIndex=1&count=2").status == 200
    client.close()
    line = s.wait_for(re.compile(r"(GET\s+/scim/v2/Users\?startIndex=1&count=2 200 [\d.]+ms)"))
    assert line
    assert s.stop(signal.SIGINT) == 0


def test_generated_token_is_kept_beside_db_and_reused(served, tmp_path: Path) -> None:
    db = tmp_path / "data" / "scim.json"
    s1 = start(served, "--port", "0", "--db", str(db))
    s1.base_url()
    token_file = db.with_name("scim.token")
    token = token_file.read_text().strip()
    assert len(token) >= 32 and oct(token_file.stat().st_mode & 0o777) == "0o600"
    assert any(token in line for line in s1.stdout_lines)
    assert s1.stop() == 0
    s2 = start(served, "--port", "0", "--db", str(db))
    base = s2.base_url()
    assert ScimClient(base, token=token).get("/Users").status == 200
    assert ScimClient(base, token="other").get("/Users").status == 401
    assert s2.stop() == 0


def test_port_in_use_is_one_clear_line(served, tmp_path: Path) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        s = start(served, "--port", str(port), "--db", str(tmp_path / "d.json"))
        rc = s.proc.wait(20)
        s.stop()
    finally:
        blocker.close()
    assert rc == 1
    errors = [line for line in s.stderr_lines if line.strip()]
    assert len(errors) == 1 and f"Port {port}" in errors[0] and "in use" in errors[0]
    assert "Traceback" not in "\n".join(s.stderr_lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "out of range"),
        (["--basic", "nopassword"], "USER:PASS"),
        (["--host", "203.0.113.254"], "not an address of this machine"),
    ],
)
def test_bad_settings_are_clear_errors(served, tmp_path: Path, args, message) -> None:
    s = start(served, "--db", str(tmp_path / "d.json"), "--port", "0", *args)
    rc = s.proc.wait(20)
    s.stop()
    text = "\n".join(s.stderr_lines)
    assert rc != 0 and message in text and "Traceback" not in text


def test_corrupt_data_file_is_moved_aside_not_deleted(served, tmp_path: Path) -> None:
    db = tmp_path / "d.json"
    db.write_text('{"Users": {"1": {"id": "x", "userName": ')
    s = start(served, "--port", "0", "--db", str(db), "--no-auth")
    s.base_url()
    warning = s.wait_for(re.compile(r"(WARNING: .*)"))
    moved = list(tmp_path.glob("d.json.corrupt-*"))
    assert len(moved) == 1 and str(moved[0]) in warning
    assert moved[0].read_text() == '{"Users": {"1": {"id": "x", "userName": '
    assert s.stop() == 0
    assert json.loads(db.read_text())  # a fresh, valid file


def test_sigkill_during_create_burst_keeps_every_acknowledged_user(served, tmp_path) -> None:
    db = tmp_path / "burst.json"
    s = start(served, "--port", "0", "--db", str(db), "--token", "t", "--log", "jsonl")
    base = s.wait_for(BASE_URL_RE, "stderr")
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def worker(n: int) -> None:
        client = ScimClient(base, token="t", timeout=5)
        i = 0
        while not stop.is_set():
            name = f"w{n}-{i}@example.com"
            try:
                resp = client.post("/Users", okta_create_body(name))
            except OSError:
                return
            if resp.status == 201:
                with lock:
                    acknowledged.append(name)
            i += 1

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    s.proc.kill()  # SIGKILL mid-burst
    s.proc.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acknowledged) > 50
    # The TinyDB file is valid JSON even right after the kill.
    if db.exists():
        json.loads(db.read_text())
    s2 = start(served, "--port", "0", "--db", str(db), "--token", "t")
    client = ScimClient(s2.base_url(), token="t")
    stored: set[str] = set()
    start_index = 1
    while True:
        page = client.get(f"/Users?startIndex={start_index}&count=1000&attributes=userName").body
        stored |= {r["userName"] for r in page["Resources"]}
        start_index += 1000
        if start_index > page["totalResults"]:
            break
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged users lost, e.g. {sorted(missing)[:3]}"
    last = acknowledged[-1]
    found = client.get("/Users?" + filter_query(f'userName eq "{last}"')).body
    assert found["totalResults"] == 1
    client.close()
    assert s2.stop() == 0
    json.loads(db.read_text())


def test_faults_and_okta_insight_in_jsonl(served, tmp_path: Path) -> None:
    s = start(
        served,
        *("--port", "0", "--db", str(tmp_path / "d.json"), "--token", "t", "--log", "jsonl"),
        *("--fault", "status=429,retry_after=30,method=POST,path=/Users,count=1"),
        *("--fault-preset", "503-groups"),
    )
    base = s.wait_for(BASE_URL_RE, "stderr")
    assert any("FAULT:" in line and "429" in line for line in s.stderr_lines)
    client = ScimClient(base, token="t")
    check = client.get("/Users?" + filter_query('userName eq "jane@example.com"'))
    assert check.status == 200
    assert client.post("/Users", okta_create_body("jane@example.com")).status == 429
    assert client.post("/Users", okta_create_body("jane@example.com")).status == 201
    assert client.get("/Groups?startIndex=1&count=100").status == 503
    client.close()
    assert s.stop() == 0
    recs = [json.loads(line) for line in s.stdout_lines]
    assert [r["okta_step"] for r in recs] == [
        "create_user_existence_check",
        "create_user",
        "create_user",
        recs[3]["okta_step"],
    ]
    assert recs[0]["fault"] is None and "jane@example.com" in recs[0]["okta_label"]
    assert recs[1]["fault"] and recs[1]["okta_next_retry_in_s"] == 30
    assert recs[2]["okta_retry"] == 1 and "retry 1" in recs[2]["okta_label"]
    assert recs[3]["status"] == 503 and "503" in recs[3]["fault"]
    assert all(r["okta_explanation"] for r in recs)


def test_bad_fault_spec_is_one_line_and_server_does_not_start(served, tmp_path: Path) -> None:
    s = start(served, "--port", "0", "--db", str(tmp_path / "d.json"), "--fault", "stauts=500")
    rc = s.proc.wait(20)
    s.stop()
    errors = [line for line in s.stderr_lines if line.strip()]
    assert rc == 2 and len(errors) == 1 and "stauts" in errors[0]
    assert not (tmp_path / "d.json").exists()


def test_second_server_on_same_data_file_is_refused(served, tmp_path: Path) -> None:
    db = str(tmp_path / "shared.json")
    first = start(served, "--port", "0", "--db", db, "--no-auth")
    first.base_url()
    second = start(served, "--port", "0", "--db", db, "--no-auth")
    rc = second.proc.wait(20)
    second.stop()
    errors = [line for line in second.stderr_lines if line.strip()]
    assert rc == 1 and len(errors) == 1 and "already using the data file" in errors[0]
    assert first.proc.poll() is None and first.stop() == 0


def test_window_options_work_without_the_gui_word(tmp_path: Path) -> None:
    from scim_desktop.cli import build_parser, main

    assert build_parser().parse_args(["gui", "--port", "9"]).port == 9
    # Without a display the window falls back to serving; a bad port proves the options
    # reached the gui command's parser instead of being refused at the top level.
    env_display = os.environ.pop("DISPLAY", None)
    qpa = os.environ.pop("QT_QPA_PLATFORM", None)
    try:
        rc = main(["--port", "70000", "--db", str(tmp_path / "d.json")])
    finally:
        if env_display is not None:
            os.environ["DISPLAY"] = env_display
        if qpa is not None:
            os.environ["QT_QPA_PLATFORM"] = qpa
    assert rc == 2


def test_banner_names_the_token_file_only_when_it_holds_the_token(served, tmp_path: Path) -> None:
    db = tmp_path / "d.json"
    token_file = tmp_path / "d.token"
    given = start(served, "--port", "0", "--db", str(db), "--token", "tok")
    given.base_url()
    given.wait_for(re.compile(r"(Stop with Ctrl\+C)"))
    assert not token_file.exists()
    assert not [line for line in given.stdout_lines if "Token file" in line]
    assert given.stop() == 0
    # A kept token from an earlier run is not the one in use with --token either.
    token_file.write_text("an-older-generated-token\n")
    again = start(served, "--port", "0", "--db", str(db), "--token", "tok")
    again.wait_for(re.compile(r"(Stop with Ctrl\+C)"))
    assert not [line for line in again.stdout_lines if "Token file" in line]
    assert again.stop() == 0
    kept = start(served, "--port", "0", "--db", str(db))
    assert kept.wait_for(re.compile(r"Token file: (\S+)")) == str(token_file)
    assert kept.stop() == 0


def test_headless_banner_says_the_next_step_for_okta(served, tmp_path: Path) -> None:
    s = start(served, "--port", "0", "--db", str(tmp_path / "d.json"), "--no-auth")
    s.wait_for(re.compile(r"(Stop with Ctrl\+C)"))
    text = "\n".join(s.stdout_lines)
    assert "Next step: Okta calls SCIM servers from its cloud" in text
    assert "--tunnel cloudflared" in text and '"Connect a real Okta tenant"' in text
    assert s.stop() == 0


def test_the_window_module_does_not_import_the_command_line() -> None:
    """options.py sits below cli.py and gui/app.py: no import circle between them."""
    script = (
        "import sys\n"
        "import scim_desktop.gui.app\n"
        "print(sorted(m for m in sys.modules if m in ('scim_desktop.cli', 'scim_desktop.options')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['scim_desktop.options']"


def test_layers_import_only_what_is_below_them() -> None:
    """core/ loads no Qt, Tornado or TinyDB; store/ and server/ no Qt; the command line
    (parsing included) no Qt either, so ``serve`` works where Qt cannot load."""
    script = (
        "import importlib, pkgutil, sys\n"
        "import scim_desktop.core as core\n"
        "for m in pkgutil.iter_modules(core.__path__):\n"
        "    importlib.import_module('scim_desktop.core.' + m.name)\n"
        "seen = {n.split('.')[0] for n in sys.modules}\n"
        "print('core', sorted(seen & {'PySide6', 'tornado', 'tinydb'}))\n"
        "import scim_desktop.store, scim_desktop.server.runner, scim_desktop.cli\n"
        "scim_desktop.cli.build_parser().parse_args(['serve'])\n"
        "print('below gui', 'PySide6' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["core []", "below gui False"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Qt's xcb plugin: Linux only")
def test_a_window_qt_cannot_show_falls_back_to_the_headless_server(tmp_path: Path) -> None:
    """Qt aborts the process when its X11 plugin cannot load (e.g. a desktop without
    libxcb-cursor0); the command line checks first, says why and what to install, and serves
    headless instead. Here the plugin Qt would find first (QT_PLUGIN_PATH) is unloadable."""
    platforms = tmp_path / "plugins" / "platforms"
    platforms.mkdir(parents=True)
    (platforms / "libqxcb.so").write_text("not a shared library\n")
    # Empty values count as unset (conftest asks for offscreen; the host may run Wayland).
    env = {
        "QT_QPA_PLATFORM": "",
        "WAYLAND_DISPLAY": "",
        "DISPLAY": ":97",
        "XDG_SESSION_TYPE": "x11",
        "QT_PLUGIN_PATH": str(tmp_path / "plugins"),
    }
    options = ["--port", "0", "--no-auth", "--db", str(tmp_path / "d.json")]
    s = Served(options, env, command="")  # no subcommand: the window
    try:
        assert s.base_url().startswith("http://127.0.0.1:")
        notice = s.wait_for(re.compile(r"(the desktop window cannot start .*)"), "stderr")
        assert "Qt cannot load its X11 platform plugin" in notice
        assert "sudo apt-get install" in notice and "libxcb-cursor0" in notice
        assert "Starting the headless server instead" in notice
        assert s.stop() == 0
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
    # A screenshot cannot come from the headless server: one error line, exit 1.
    shot = subprocess.run(
        [sys.executable, "-m", "scim_desktop", *options, "--screenshot", str(tmp_path / "w.png")],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    lines = [line for line in shot.stderr.splitlines() if line.strip()]
    assert shot.returncode == 1 and len(lines) == 1, shot.stderr
    assert lines[0].startswith("scim-desktop: error: Qt cannot load its X11 platform plugin")


# --- the entitlement catalog (issue 13) ---------------------------------------------------------
CATALOG_EXAMPLE = Path(__file__).resolve().parents[1] / "resources" / "catalog-example.json"


def test_catalog_is_served_and_kept_across_restarts(served, tmp_path: Path) -> None:
    db = str(tmp_path / "d.json")
    first = start(served, "--port", "0", "--db", db, "--no-auth", "--catalog", str(CATALOG_EXAMPLE))
    client = ScimClient(first.base_url())
    assert client.get("/Roles?count=1&startIndex=1").body["itemsPerPage"] == 1
    client.close()
    banner = "\n".join(first.stdout_lines)
    assert "/Roles (3), /Licenses (2), /Profiles (2); loaded from --catalog" in banner
    assert first.stop() == 0
    again = start(served, "--port", "0", "--db", db, "--no-auth")
    client = ScimClient(again.base_url())
    types = client.get("/ResourceTypes").body
    assert [t["id"] for t in types["Resources"]] == ["User", "Group", "Role", "License", "Profile"]
    assert client.get("/Licenses/lic-pro").status == 200
    client.close()
    assert "kept in the data file" in "\n".join(again.stdout_lines)
    assert again.stop() == 0


@pytest.mark.parametrize(
    ("change", "place"),
    [
        (lambda d: d["resourceTypes"][1].update(endpoint="/Users"), "resourceTypes[1].endpoint: "),
        (lambda d: d["resourceTypes"][2].update(endpoint="/roles"), "resourceTypes[2].endpoint: "),
        (
            lambda d: d["resourceTypes"][0].update(endpoint="/ResourceTypes"),
            "resourceTypes[0].endpoint: ",
        ),
    ],
)
def test_bad_catalog_file_is_one_line_and_exit_2(served, tmp_path: Path, change, place) -> None:
    doc = json.loads(CATALOG_EXAMPLE.read_text())
    change(doc)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    s = start(served, "--port", "0", "--db", str(tmp_path / "d.json"), "--catalog", str(bad))
    rc = s.proc.wait(20)
    s.stop()
    errors = [line for line in s.stderr_lines if line.strip()]
    assert rc == 2 and len(errors) == 1, errors
    assert errors[0].startswith(f"scim-desktop: error: --catalog {bad}: {place}")
    assert not (tmp_path / "d.json").exists()


def test_missing_or_broken_catalog_file_is_exit_2(tmp_path: Path, capsys) -> None:
    from scim_desktop.cli import build_parser, main

    assert build_parser().parse_args(["gui", "--catalog", "c.json"]).catalog == Path("c.json")
    assert main(["serve", "--db", str(tmp_path / "d.json"), "--catalog", str(tmp_path / "no")]) == 2
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert main(["serve", "--db", str(tmp_path / "d.json"), "--catalog", str(broken)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "cannot read it" in err[0] and "not valid JSON" in err[1]


def test_the_window_takes_the_catalog_option(tmp_path: Path) -> None:
    """``gui --catalog FILE`` reaches the window's ServerConfig (gui/app.py config_from)."""
    pytest.importorskip("PySide6.QtCore")
    from PySide6.QtCore import QSettings

    from scim_desktop.cli import build_parser
    from scim_desktop.core.catalog import parse_catalog_bytes
    from scim_desktop.gui.app import config_from

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    args = build_parser().parse_args(
        ["gui", "--db", str(tmp_path / "d.json"), "--catalog", str(CATALOG_EXAMPLE)]
    )
    config = config_from(args, settings)
    assert config.catalog == parse_catalog_bytes(CATALOG_EXAMPLE.read_bytes())
    plain = build_parser().parse_args(["gui", "--db", str(tmp_path / "d.json")])
    assert config_from(plain, settings).catalog is None
