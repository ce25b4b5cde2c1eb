"""scim-desktop check against our own server: every check passes, the reports (JSON, JUnit, HTML)
hold what the contract says without secrets, what the run created is removed (or kept with
--keep), and the exit statuses for an unreachable server and usage errors."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from scim_desktop.check import (
    EXPECTED_CHECKS,
    Check,
    CheckOptions,
    OptionsError,
    Runner,
    make_options,
)
from scim_desktop.check.runner import PREFIX
from scim_desktop.cli import main
from scim_desktop.core.catalog import parse_catalog
from scim_desktop.server.events import RequestRecord
from scim_desktop.server.runner import ServerThread
from tests import test_check_faults
from tests.conftest import TOKEN, RecordingSink
from tests.gui.test_governance import CATALOG
from tests.scim_client import ScimClient

#: The fixture starting our server with fault rules (stopped after the test), test_check_faults'.
faulty = test_check_faults.faulty

SPEC_NAMES = [f"SPEC {n:>2}" for n in range(1, 13)]


def run_check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["check", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def leftovers(client: ScimClient) -> list[str]:
    """Names of the users and groups the checker's runs left on the server."""
    names = []
    for endpoint, attr in (("/Users", "userName"), ("/Groups", "displayName")):
        page = client.get(f"{endpoint}?startIndex=1&count=1000")
        assert page.status == 200
        names += [r[attr] for r in page.body.get("Resources", [])]
    return [n for n in names if n.startswith(PREFIX)]


def test_our_server_passes_every_check_and_cleans_up(
    server: ServerThread, client: ScimClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.set_catalog(parse_catalog(CATALOG)).result(10)
    out_json, out_junit, out_html = (tmp_path / n for n in ("r.json", "r.xml", "r.html"))
    rc, out, err = run_check(
        capsys,
        server.base_url,
        *("--token", TOKEN, "--json", str(out_json), "--junit", str(out_junit)),
        *("--html", str(out_html)),
    )
    assert rc == 0, out
    assert err == ""
    lines = out.splitlines()
    total = len(json.loads(out_json.read_text(encoding="utf-8"))["checks"])
    assert lines[-1] == f"check: {total} passed, 0 failed, 0 skipped"
    assert lines[-2].startswith("time: ") and lines[-2].endswith(" s")
    assert all(line.startswith(("PASS  ", "cleanup: ", "time: ", "check: ")) for line in lines)

    doc = json.loads(out_json.read_text(encoding="utf-8"))
    assert set(doc) >= {"url", "checks", "passed", "failed", "skipped"}
    assert doc["url"] == server.base_url and doc["failed"] == doc["skipped"] == 0
    checks = doc["checks"]
    assert {c["suite"] for c in checks} == {"spec", "crud", "groups", "entitlements"}
    assert [c["name"][:7] for c in checks if c["suite"] == "spec"] == SPEC_NAMES
    per_suite = {s: sum(c["suite"] == s for c in checks) for s in EXPECTED_CHECKS}
    # The catalog has three endpoints: two checks each beyond the first one's.
    assert per_suite == {**EXPECTED_CHECKS, "entitlements": EXPECTED_CHECKS["entitlements"] + 4}
    for c in checks:
        assert set(c) == {"name", "suite", "status", "detail", "okta_effect", "fix", "requests"}
        assert c["status"] == "pass" and c["requests"], c["name"]
        for r in c["requests"]:
            assert {"method", "url", "headers", "body", "status", "response_body"} <= set(r)
    # Okta's headers: the SPEC steps as Runscope sends them, the rest as Okta's client.
    agents = {c["suite"]: {r["headers"]["User-Agent"] for r in c["requests"]} for c in checks}
    assert agents["spec"] == {"OKTA SCIM Integration"}
    assert agents["crud"] == agents["groups"] == {"Okta SCIM Client 1.0.0"}
    # 409 on the duplicate, 401 to a wrong credential, 404 for the made-up id.
    statuses = {c["name"]: [r["status"] for r in c["requests"]] for c in checks}
    assert statuses["duplicate create -> 409"] == [409]
    assert [s for n, s in statuses.items() if n.startswith("SPEC 11")] == [[401]]
    assert [s for n, s in statuses.items() if n.startswith("SPEC 12")] == [[404]]

    # JUnit: one testsuite per suite, no failure.
    root = ET.parse(out_junit).getroot()
    assert root.tag == "testsuites"
    assert root.get("tests") == str(len(checks)) and root.get("failures") == "0"
    assert [s.get("name") for s in root] == ["spec", "crud", "groups", "entitlements"]
    assert sum(len(s.findall("testcase")) for s in root) == len(checks)
    assert not root.findall(".//failure") and not root.findall(".//skipped")

    # No credential, no password in any report.
    for path in (out_json, out_junit, out_html):
        text = path.read_text(encoding="utf-8")
        assert TOKEN not in text
        assert "Okta-placeholder-1!" not in text and "Spec-Test-Password-1!" not in text
        assert "New-Okta-Password-2!" not in text
    assert "Bearer ***" in out_json.read_text(encoding="utf-8")
    html = out_html.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "check: " in html

    # Cleanup: nothing named scim-desktop-check-... is left.
    assert leftovers(client) == []
    assert any(line.startswith("cleanup: deleted ") for line in lines)


def test_without_a_catalog_entitlements_are_skipped_with_the_reason(
    server: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = run_check(capsys, server.base_url, "--token", TOKEN, "--suite", "entitlements")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].startswith("SKIP  entitlements  resource types (GET /ResourceTypes): ")
    assert "declares no type with schema urn:okta:scim:schemas:core:1.0:Role" in lines[0]
    assert lines[-1] == "check: 0 passed, 0 failed, 1 skipped"


def test_keep_keeps_what_the_checks_created(
    server: ServerThread, client: ScimClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "r.json"
    rc, out, _ = run_check(
        capsys,
        server.base_url,
        "--token",
        TOKEN,
        "--suite",
        "crud,groups",
        "--keep",
        "--json",
        str(out_json),
    )
    assert rc == 0, out
    kept = leftovers(client)
    # crud's user and the two group members (the group itself was deleted by its own check).
    assert len(kept) == 3 and all(n.endswith("@example.com") for n in kept)
    cleanup = json.loads(out_json.read_text(encoding="utf-8"))["cleanup"]
    assert sorted(line.split()[2] for line in cleanup) == sorted(kept)
    assert "cleanup: kept user " in out


def test_header_credential_and_basic_parse(
    server: ServerThread, client: ScimClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "r.json"
    rc, _, _ = run_check(
        capsys,
        server.base_url,
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--suite",
        "spec",
        "--json",
        str(out_json),
    )
    assert rc == 0
    text = out_json.read_text(encoding="utf-8")
    assert TOKEN not in text and "Bearer ***" in text
    # Basic credentials the server does not take: refused, one failure saying so (1).
    rc, out, _ = run_check(
        capsys, server.base_url, "--basic", "user:secret-pass", "--suite", "spec"
    )
    assert rc == 1
    assert "secret-pass" not in out and "the server refused the credential (401: " in out
    assert leftovers(client) == []


def test_an_unreachable_server_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc, out, err = run_check(capsys, f"http://127.0.0.1:{port}/scim/v2", "--token", "t0k3n-x")
    assert rc == 2 and out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"scim-desktop check: error: cannot reach http://127.0.0.1:{port}")
    assert "refused" in err.lower()


@pytest.mark.parametrize(
    "args, message",
    [
        (["ftp://example.com/scim"], "URL must be an http:// or https://"),
        (["http://x/scim/v2", "--suite", "spec,nope"], "unknown suite 'nope'"),
        (["http://x/scim/v2", "--basic", "no-colon"], "--basic must be USER:PASS"),
        (["http://x/scim/v2", "--header", "NoColon"], '--header must be "Name: value"'),
        (["http://x/scim/v2", "--header", "Bad Name: v"], '--header must be "Name: value"'),
        (["http://x/scim/v2", "--header", "X-Key: a\r\nX-Other: b"], '--header must be "Name'),
        (["http://x/scim/v2", "--basic", ":pw"], "--basic must be USER:PASS"),
        (["http://x/scim/v2", "--suite", " , "], "--suite: no suite named"),
        (["http://x/scim/v2", "--token", "Bearer abc"], "--token must be the bearer token alone"),
        (["http://x/scim/v2", "--token", ""], "--token must be the bearer token alone"),
        (["http://x/scim/v2", "--token", "a", "--basic", "u:p"], "not allowed with argument"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["check", *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_make_options_takes_the_command_line_and_the_form_alike() -> None:
    """One validation: the command line's texts and the window's separate fields give the
    same options, and the same mistakes are refused (what a form shows is its own words)."""
    from_cli = make_options(
        " https://app.example.com/scim/v2/ ",
        basic="okta:pa:ss",
        header=["X-Key:  v1 "],
        suites="Groups, spec",
        keep=True,
    )
    from_form = make_options(
        "https://app.example.com/scim/v2",
        basic=("okta", "pa:ss"),
        header=[(" X-Key", "v1")],
        suites=["groups", "spec"],
        keep=True,
    )
    assert (
        from_cli
        == from_form
        == CheckOptions(
            url="https://app.example.com/scim/v2",
            basic=("okta", "pa:ss"),
            headers={"X-Key": "v1"},
            suites=("spec", "groups"),  # SUITES' order
            keep=True,
        )
    )
    for kwargs, option in [
        ({"basic": ("ok:ta", "pw")}, "basic"),  # a colon in the user-id (RFC 7617 §2)
        ({"header": [("X Key", "v")]}, "header"),
        ({"header": [("X-Key", "a\nb")]}, "header"),
        ({"token": "a b"}, "token"),
        ({"suites": []}, "suite"),
    ]:
        with pytest.raises(OptionsError) as exc:
            make_options("http://x/scim/v2", **kwargs)  # type: ignore[arg-type]
        assert exc.value.option == option
    with pytest.raises(OptionsError) as exc:
        make_options("app.example.com/scim/v2")
    assert exc.value.option == "url" and str(exc.value).startswith("URL must be an http://")


def test_cancel_stops_the_run_and_still_cleans_up(server: ServerThread, client: ScimClient) -> None:
    cancel = threading.Event()
    seen: list[Check] = []

    def on_check(check: Check) -> None:
        seen.append(check)
        if len(seen) == 16:  # in crud, after its user was created
            cancel.set()

    runner = Runner(CheckOptions(server.base_url, token=TOKEN), on_check=on_check, cancel=cancel)
    report = runner.run()
    assert report.interrupted
    assert [c.name for c in report.checks[:16]] == [c.name for c in seen[:16]]
    # The check that was running when the flag was set is the last, skipped as cancelled.
    assert report.checks[-1].status == "skip" and report.checks[-1].detail == "cancelled"
    assert len(report.checks) == 17 and report.failed == 0
    assert leftovers(client) == []
    assert any(line.startswith("deleted user ") for line in report.cleanup)


def test_the_api_reports_each_check_as_it_finishes(server: ServerThread) -> None:
    done: list[tuple[str, str]] = []
    options = CheckOptions(server.base_url, token=TOKEN, suites=("groups",))
    report = Runner(options, on_check=lambda c: done.append((c.name, c.status))).run()
    assert done == [(c.name, c.status) for c in report.checks]
    assert [s for _, s in done] == ["pass"] * 7


def test_ctrl_c_cleans_up_and_exits_130(faulty: Callable[..., ServerThread]) -> None:
    """SIGINT while a request waits (the server is slowed by a latency rule): what was created
    is removed before the process ends, and the report so far is printed."""
    server = faulty("latency_ms=400,method=PATCH")
    proc = subprocess.Popen(
        [sys.executable, "-m", "scim_desktop", "check", server.base_url, "--token", TOKEN],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:  # the run reaches crud's PATCHes after its create
        lines.append(line.rstrip("\n"))
        if "create user (POST /Users)" in line:
            break
    time.sleep(0.2)  # now in the slow PATCH
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    lines += rest.splitlines()
    assert proc.returncode == 130, err
    assert "interrupted: the checks left were not run" in lines
    assert lines[-1].startswith("check: ")
    client = ScimClient(server.base_url, token=TOKEN)
    try:
        assert leftovers(client) == []
    finally:
        client.close()
    assert any(line.startswith("cleanup: deleted ") for line in lines)


def test_the_checker_loads_no_tornado_qt_or_tinydb() -> None:
    """check/ sits on the command line's level but needs only http.client, core and the
    redaction helpers of server/events.py (which import no Tornado)."""
    script = (
        "import sys\n"
        "import scim_desktop.check.cli, scim_desktop.check.suites, scim_desktop.check.report\n"
        "print(sorted({n.split('.')[0] for n in sys.modules} & {'PySide6', 'tornado', 'tinydb'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_cleanup_line_counts_what_cleanup_removed_in_words() -> None:
    from scim_desktop.check.model import Report
    from scim_desktop.check.report import cleanup_lines

    report = Report(url="http://x/scim/v2")
    report.cleanup += ["deleted user a", "deleted user b", "deleted group g"]
    assert cleanup_lines(report) == ["cleanup: deleted 2 users and 1 group it created"]
    # The groups suite deletes its own group: nothing of that kind is named with a zero.
    report.cleanup[:] = ["deleted user a", "kept group g (1)"]
    assert cleanup_lines(report) == [
        "cleanup: deleted 1 user it created",
        "cleanup: kept group g (1)",
    ]


def _requests_seen(sink: RecordingSink, client: ScimClient) -> int:
    """How many requests the server answered before now (records are published after the
    answer: one more request of ours, once recorded, shows every earlier one was)."""
    before = len([e for e in sink.events if isinstance(e, RequestRecord)])
    assert client.get("/ServiceProviderConfig").status == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        records = [e for e in sink.events if isinstance(e, RequestRecord)]
        if records and records[-1].path.endswith("/ServiceProviderConfig"):
            return len(records) - 1
        time.sleep(0.02)
    raise AssertionError(f"the probe was never recorded ({before} records before it)")


def test_a_refused_token_is_one_failure_and_the_rest_skip(
    server: ServerThread,
    client: ScimClient,
    sink: RecordingSink,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A mistyped token: the first check fails saying the credential was refused (Okta's
    effect, the fix), every check that needs the credential is skipped for that reason, and
    SPEC 11 (whose point is a 401 to a wrong bearer) still runs."""
    wrong = "mistyped-token-4f2a"
    out_json, out_junit = tmp_path / "r.json", tmp_path / "r.xml"
    rc, out, err = run_check(
        capsys,
        server.base_url,
        *("--token", wrong, "--json", str(out_json), "--junit", str(out_junit)),
    )
    assert rc == 1 and err == ""
    lines = out.splitlines()
    fails = [line for line in lines if line.startswith("FAIL")]
    assert len(fails) == 1 and fails[0].startswith("FAIL  spec          SPEC  1: list users")
    said = "the server refused the credential (401: Authentication failed"
    assert out.count(said) == 1  # said once (and in a line before the summary)
    assert "Test API Credentials fails" in out and "cannot provision" in out
    assert "Authorization: Bearer <token>" in out and "--token" in out
    assert "Expected 200, got 401" not in out
    doc = json.loads(out_json.read_text(encoding="utf-8"))
    checks = doc["checks"]
    total = len(checks)
    assert lines[-1] == f"check: 1 passed, 1 failed, {total - 2} skipped"
    assert lines[-2].startswith("time: ")
    assert lines[-3].startswith("credential refused (401: Authentication failed")
    assert not any(line.startswith("cleanup: ") for line in lines)  # nothing was created

    # Every check is still listed (a progress bar's count holds), in the usual order.
    per_suite = {s: sum(c["suite"] == s for c in checks) for s in EXPECTED_CHECKS}
    assert per_suite == {**EXPECTED_CHECKS, "entitlements": 1}
    assert [c["name"][:7] for c in checks if c["suite"] == "spec"] == SPEC_NAMES
    assert (doc["passed"], doc["failed"], doc["skipped"]) == (1, 1, total - 2)
    assert doc["credential_refused"].startswith("401: Authentication failed")
    first, spec11 = checks[0], checks[10]
    assert first["status"] == "fail" and first["detail"].startswith(said)
    assert [r["status"] for r in first["requests"]] == [401]
    assert "Test API Credentials fails" in first["okta_effect"] and "--token" in first["fix"]
    assert spec11["name"].startswith("SPEC 11") and spec11["status"] == "pass"
    assert [r["status"] for r in spec11["requests"]] == [401]
    skipped = [c for c in checks if c["status"] == "skip"]
    assert {c["detail"] for c in skipped} == {"the server refused the credential"}
    assert all(c["requests"] == [] for c in skipped)  # held back, not sent
    # The server saw the refused request and SPEC 11's, nothing else (no cleanup lookups).
    assert _requests_seen(sink, client) == 2

    # JUnit says the same: one failure (the same message), the same skips.
    root = ET.parse(out_junit).getroot()
    assert (root.get("tests"), root.get("failures")) == (str(total), "1")
    assert root.get("skipped") == str(total - 2)
    failures = root.findall(".//failure")
    assert [f.get("message") for f in failures] == [first["detail"]]
    assert {s.get("message") for s in root.findall(".//skipped")} == {
        "the server refused the credential"
    }
    for text in (out, out_json.read_text(encoding="utf-8"), out_junit.read_text("utf-8")):
        assert wrong not in text
    assert leftovers(client) == []


def test_a_403_and_a_missing_credential_are_said_on_the_first_check(
    server: ServerThread, faulty: Callable[..., ServerThread]
) -> None:
    """403 is a refusal too, whichever suite runs first; with no credential given the finding
    says none was; a suite that would skip on the refused answer (entitlements without
    /ResourceTypes) fails for the credential instead."""
    forbidding = faulty("status=403")
    options = CheckOptions(forbidding.base_url, token=TOKEN, suites=("crud", "groups"))
    report = Runner(options).run()
    first = report.checks[0]
    assert first.name.startswith("Test API credentials") and first.status == "fail"
    assert first.detail.startswith("the server refused the credential (403: ")
    assert [r.status for r in first.requests] == [403]  # GET /Groups was held back
    assert len(first.findings) == 1 and first.findings[0].request == 0
    assert report.refused.startswith("403: ") and report.failed == 1
    assert report.skipped == EXPECTED_CHECKS["crud"] + EXPECTED_CHECKS["groups"] - 1
    assert report.cleanup == []

    options = CheckOptions(server.base_url, suites=("entitlements",))
    report = Runner(options).run()
    assert [(c.name, c.status) for c in report.checks] == [
        ("resource types (GET /ResourceTypes)", "fail")
    ]
    assert report.checks[0].detail.startswith(
        "the server asks for a credential and none was given (401: "
    )
    options = CheckOptions(server.base_url, suites=("groups",))
    report = Runner(options).run()
    assert report.failed == 1 and report.skipped == EXPECTED_CHECKS["groups"] - 1
    assert {c.detail for c in report.checks[1:]} == {
        "the server asks for a credential and none was given"
    }


def test_a_401_after_the_first_answer_is_judged_where_it_happens(
    faulty: Callable[..., ServerThread],
) -> None:
    """Only a refusal of the first request is the credential's: a server that takes the
    token but answers 401 to creates fails those checks with Okta's own findings."""
    server = faulty("status=401,method=POST")
    report = Runner(CheckOptions(server.base_url, token=TOKEN, suites=("crud",))).run()
    assert report.refused == ""
    by_name = {c.name: c for c in report.checks}
    assert by_name["Test API credentials (GET /Users, GET /Groups)"].status == "pass"
    create = by_name["create user (POST /Users)"]
    assert create.status == "fail" and "refused the credential" not in create.detail
    assert "answered 401" in create.detail
    assert by_name["read user (GET /Users/{id})"].detail == "the create returned no user id"
