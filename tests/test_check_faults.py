"""scim-desktop check against servers that answer wrong: each is caught by the right check with
the right Okta effect. Our server plays most of them with fault rules (an empty 201 to creates,
501 to PATCH, 500 on /Groups, DELETE /Users refused); a tiny rewriting proxy in front of it plays
the rest (totalResults as a string, a duplicate create answered 201 instead of 409)."""

from __future__ import annotations

import http.client
import json
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from scim_desktop.check import CheckOptions, Report, Runner
from scim_desktop.check.runner import PREFIX
from scim_desktop.cli import main
from scim_desktop.config import AuthConfig, ServerConfig
from scim_desktop.core.faults import parse_fault_spec
from scim_desktop.okta_sim import OktaSimulator
from scim_desktop.server.runner import ServerThread
from tests.conftest import TOKEN, RecordingSink
from tests.scim_client import ScimClient

#: (method, path, request body, status, answer body) -> (status, answer body)
Rewrite = Callable[[str, str, bytes, int, bytes], tuple[int, bytes]]


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[Callable[..., ServerThread]]:
    """Start our server with fault rules (``--fault`` specs)."""
    started: list[ServerThread] = []

    def start(*specs: str) -> ServerThread:
        config = ServerConfig(
            host="127.0.0.1",
            port=0,
            db_path=tmp_path / f"d{len(started)}.json",
            auth=AuthConfig("bearer", token=TOKEN),
            faults=tuple(parse_fault_spec(s) for s in specs),
        )
        thread = ServerThread(config, RecordingSink())
        thread.start()
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.stop()


class RewritingProxy:
    """A few lines of http.server in front of a real SCIM server, changing its answers."""

    def __init__(self, upstream: str, rewrite: Rewrite) -> None:
        target = urlsplit(upstream)

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                status, answer = rewrite(self.command, self.path, body, resp.status, resp.read())
                conn.close()
                self.send_response(status)
                self.send_header("Content-Type", "application/scim+json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}{target.path}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def proxy(server: ServerThread) -> Iterator[Callable[[Rewrite], RewritingProxy]]:
    made: list[RewritingProxy] = []

    def start(rewrite: Rewrite) -> RewritingProxy:
        made.append(RewritingProxy(server.base_url, rewrite))
        return made[-1]

    yield start
    for p in made:
        p.close()


def run(url: str, *suites: str) -> Report:
    return Runner(CheckOptions(url, token=TOKEN, suites=suites)).run()


def by_name(report: Report) -> dict[str, Any]:
    return {c.name: c for c in report.checks}


def leftovers(base_url: str) -> list[dict[str, Any]]:
    client = ScimClient(base_url, token=TOKEN)
    try:
        out = []
        for endpoint, attr in (("/Users", "userName"), ("/Groups", "displayName")):
            page = client.get(f"{endpoint}?startIndex=1&count=1000").body
            out += [r for r in page.get("Resources", []) if r[attr].startswith(PREFIX)]
        return out
    finally:
        client.close()


def test_an_empty_201_to_creates_fails_create_user(faulty: Callable[..., ServerThread]) -> None:
    server = faulty("action=empty,method=POST,path=/Users")
    report = run(server.base_url, "spec", "crud")
    checks = by_name(report)
    create = checks["create user (POST /Users)"]
    assert create.status == "fail"
    assert "carries no resource with an id" in create.detail
    assert 'the task fails with "Create new user returned empty user"' in create.okta_effect
    assert create.findings[0].source == "okta" and create.findings[0].effect == "fails"
    # The steps that need the id are skipped, saying why.
    read = checks["read user (GET /Users/{id})"]
    assert (read.status, read.detail) == ("skip", "the create returned no user id")
    spec_create = next(c for c in report.checks if c.name.startswith("SPEC  5"))
    assert spec_create.status == "fail" and "Runscope" in spec_create.okta_effect
    # Runscope's rule, said by the problem itself (core/okta_expect's source "runscope").
    assert {f.source for f in spec_create.findings} == {"spec"}
    assert spec_create.okta_effect.startswith("[Runscope SPEC test] Okta's SPEC test suite fails")
    # The server stored the users it answered empty for: cleanup found them by name.
    assert leftovers(server.base_url) == []


def test_501_to_patch_fails_deactivation_with_no_fallback(
    faulty: Callable[..., ServerThread], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = faulty("action=not_implemented,method=PATCH")
    junit = tmp_path / "r.xml"
    rc = main(
        [
            "check",
            server.base_url,
            "--token",
            TOKEN,
            "--suite",
            "crud,groups",
            "--junit",
            str(junit),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 1
    # JUnit: the failures a CI pipeline shows, each with Okta's effect and the fix.
    root = ET.parse(junit).getroot()
    failures = root.findall(".//testcase/failure")
    assert root.get("failures") == str(len(failures)) and len(failures) >= 6
    case = next(c for c in root.iter("testcase") if c.get("name") == "deactivate (PATCH, no path)")
    failure = case.find("failure")
    assert failure is not None and "PATCH answered 501" in (failure.get("message") or "")
    assert "Okta does not fall back to PUT" in (failure.text or "")
    assert "Fix: " in (failure.text or "") and f"PATCH {server.base_url}/Users/" in (
        failure.text or ""
    )
    assert "FAIL  crud          deactivate (PATCH, no path)" in out
    block = out.split("FAIL  crud          deactivate (PATCH, no path)")[1].split("\nFAIL")[0]
    assert "PATCH answered 501" in block
    assert "Okta does not fall back to PUT" in block
    assert "fix: Implement PATCH (RFC 7644 §3.5.2)" in block
    # The AIW PUT deactivation is fine: PUT works on this server.
    assert "PASS  crud          deactivate (AIW: GET, then PUT)" in out
    assert "FAIL  groups        add members (PATCH add members)" in out
    assert out.splitlines()[-1].startswith("check: ") and " failed, " in out.splitlines()[-1]
    assert leftovers(server.base_url) == []


def test_500_on_groups_fails_spec_and_the_group_push(faulty: Callable[..., ServerThread]) -> None:
    server = faulty("status=500,path=/Groups*")
    report = run(server.base_url, "spec", "groups")
    checks = by_name(report)
    spec_groups = next(c for c in report.checks if c.name.startswith("SPEC 10"))
    assert spec_groups.status == "fail" and "Expected 200, got 500" in spec_groups.detail
    lookup = checks["group lookup (displayName eq, absent)"]
    assert lookup.status == "fail" and "answered 500" in lookup.detail
    assert "no automatic retry" in lookup.okta_effect
    create = checks["create group (POST /Groups)"]
    assert create.status == "fail"
    assert [c.status for c in report.checks if c.suite == "groups"][2:] == ["skip"] * 5
    assert leftovers(server.base_url) == []


def test_refused_user_delete_deactivates_in_cleanup(faulty: Callable[..., ServerThread]) -> None:
    server = faulty("status=405,method=DELETE,path=/Users/*")
    report = run(server.base_url, "crud")
    assert report.failed == 0
    refused = [line for line in report.cleanup if "refused DELETE" in line]
    assert len(refused) == 1 and refused[0].endswith("deactivated it instead")
    left = leftovers(server.base_url)
    assert len(left) == 1 and left[0]["active"] is False


def _string_totals(
    method: str, path: str, sent: bytes, status: int, body: bytes
) -> tuple[int, bytes]:
    try:
        doc = json.loads(body)
    except ValueError:
        return status, body
    if isinstance(doc, dict) and isinstance(doc.get("totalResults"), int):
        doc["totalResults"] = str(doc["totalResults"])
        return status, json.dumps(doc).encode()
    return status, body


def test_string_total_results_are_okta_client_strictness(
    proxy: Callable[[Rewrite], RewritingProxy], server: ServerThread
) -> None:
    upstream = proxy(_string_totals)
    report = run(upstream.base_url, "spec", "crud")
    checks = by_name(report)
    first = next(c for c in report.checks if c.name.startswith("SPEC  1"))
    assert first.status == "fail"
    assert first.detail == 'totalResults is "1", not a JSON integer'
    # Runscope would not see it; Okta's client does: the line says which.
    assert first.findings[0].source == "strict"
    assert first.okta_effect.startswith(
        "[Okta's client, stricter than Runscope] Runscope's SPEC test does not check JSON types"
    )
    walk = checks["import users (count=100 pages to totalResults)"]
    assert walk.status == "fail" and "not a JSON integer" in walk.detail
    assert "the user import fails" in walk.okta_effect
    # The import is Okta's client's own step: its rule, without the SPEC test's words.
    assert walk.findings[0].source == "strict" and walk.findings[0].effect == "fails"
    assert "Runscope's SPEC test" not in walk.okta_effect
    existence = checks["existence check before create (userName eq, absent)"]
    assert existence.status == "fail" and "the user's create task fails" in existence.okta_effect
    # Statuses and the rest were right: the creates passed.
    assert checks["create user (POST /Users)"].status == "pass"
    assert leftovers(server.base_url) == []


def _string_active(
    method: str, path: str, sent: bytes, status: int, body: bytes
) -> tuple[int, bytes]:
    """Every boolean active answered as the string "true" / "false"."""
    text = body.decode()
    for value in ("true", "false"):
        text = text.replace(f'"active":{value}', f'"active":"{value}"')
        text = text.replace(f'"active": {value}', f'"active": "{value}"')
    return status, text.encode()


def test_string_active_is_okta_client_strictness_not_a_spec_failure(
    proxy: Callable[[Rewrite], RewritingProxy], server: ServerThread
) -> None:
    upstream = proxy(_string_active)
    report = run(upstream.base_url, "spec")
    spec_create = next(c for c in report.checks if c.name.startswith("SPEC  5"))
    assert spec_create.status == "fail"
    assert spec_create.detail == 'active is "true", not a JSON boolean'
    finding = spec_create.findings[0]
    # Runscope does not check the type; Okta's client misreads it: data says which.
    assert (finding.source, finding.effect) == ("strict", "ignored")
    assert spec_create.okta_effect.startswith(
        "[Okta's client, stricter than Runscope] Runscope's SPEC test does not check JSON types"
    )
    assert "misreads whether the user is active" in spec_create.okta_effect
    # The SPEC test's own checks (statuses, Error bodies) still pass: only types differ.
    unknown = next(c for c in report.checks if c.name.startswith("SPEC  4"))
    assert unknown.status == "pass"
    assert leftovers(server.base_url) == []


def _no_conflict(
    method: str, path: str, sent: bytes, status: int, body: bytes
) -> tuple[int, bytes]:
    if method == "POST" and status == 409:
        return 201, json.dumps({**json.loads(sent), "id": "a-second-account"}).encode()
    return status, body


def test_a_duplicate_create_without_409_is_caught(
    proxy: Callable[[Rewrite], RewritingProxy], server: ServerThread, tmp_path: Path
) -> None:
    upstream = proxy(_no_conflict)
    out_json = tmp_path / "r.json"
    rc = main(
        [
            "check",
            upstream.base_url,
            "--token",
            TOKEN,
            "--suite",
            "spec,crud",
            "--json",
            str(out_json),
        ]
    )
    assert rc == 1
    doc = json.loads(out_json.read_text(encoding="utf-8"))
    failed = {c["name"]: c for c in doc["checks"] if c["status"] == "fail"}
    assert set(failed) == {"SPEC  9: create the same user again -> 409", "duplicate create -> 409"}
    dup = failed["duplicate create -> 409"]
    assert dup["detail"].startswith("the duplicate create answered 201")
    assert "two accounts for one person" in dup["okta_effect"]
    assert "409 scimType uniqueness" in dup["fix"]
    assert doc["failed"] == 2 and doc["skipped"] == 0
    assert TOKEN not in out_json.read_text(encoding="utf-8")


def _echo_credential(
    method: str, path: str, sent: bytes, status: int, body: bytes
) -> tuple[int, bytes]:
    """A careless server: its 404 details quote the credential it was sent."""
    if status == 404:
        detail = f"no such user (you sent Authorization: Bearer {TOKEN})"
        doc = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "detail": detail}
        return 404, json.dumps({**doc, "status": "404"}).encode()
    if status == 409:  # and a 409 without scimType, so something fails and is printed
        return 409, json.dumps({"detail": f"exists; token {TOKEN}"}).encode()
    return status, body


def test_a_credential_echoed_by_the_server_stays_out_of_every_report(
    proxy: Callable[[Rewrite], RewritingProxy],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    upstream = proxy(_echo_credential)
    files = [tmp_path / n for n in ("r.json", "r.xml", "r.html")]
    args = ["--json", str(files[0]), "--junit", str(files[1]), "--html", str(files[2])]
    rc = main(["check", upstream.base_url, "--token", TOKEN, "--suite", "spec", *args])
    out = capsys.readouterr().out
    assert rc == 1
    assert "FAIL  spec          SPEC  9: create the same user again -> 409" in out
    assert "***" in out  # the echoed credential, scrubbed
    for text in [out, *(f.read_text(encoding="utf-8") for f in files)]:
        assert TOKEN not in text


def test_an_answer_slower_than_the_timeout_fails_its_check_and_the_run_goes_on(
    faulty: Callable[..., ServerThread],
) -> None:
    # Okta waits 60 s; the check's timeout is shortened to keep the test quick.
    server = faulty("latency_ms=1500,method=GET,path=/Groups")
    report = Runner(CheckOptions(server.base_url, token=TOKEN, suites=("spec",), timeout=0.5)).run()
    groups = next(c for c in report.checks if c.name.startswith("SPEC 10"))
    assert groups.status == "fail"
    assert groups.requests[0].status == 0 and "no answer within" in groups.requests[0].error
    # The steps after it were answered as usual.
    assert [c.status for c in report.checks[10:]] == ["pass", "pass"]
    assert leftovers(server.base_url) == []


def _ids_missing(
    method: str, path: str, sent: bytes, status: int, body: bytes
) -> tuple[int, bytes]:
    """Answers shaped right but without ids: creates, lists, resource types, values."""
    if method == "POST":
        return 201, b'{"userName": "someone", "displayName": "something"}'
    if path.split("?")[0].endswith("/ResourceTypes"):
        types = [{"schema": "urn:okta:scim:schemas:core:1.0:Role", "endpoint": "/Roles"}]
        return 200, json.dumps({"Resources": types}).encode()
    page = {"totalResults": 1, "Resources": [{"displayName": "no id"}]}
    return 200, json.dumps(page).encode()


def test_answers_without_ids_get_a_report_not_a_traceback(
    proxy: Callable[[Rewrite], RewritingProxy], server: ServerThread
) -> None:
    upstream = proxy(_ids_missing)
    report = run(upstream.base_url, "spec", "crud", "groups", "entitlements")
    assert report.failed > 5 and not report.interrupted
    statuses = {c.name: c.status for c in report.checks}
    assert statuses["grant by PATCH add"] == "skip"
    # The simulator copes too: nothing to act on, so it stops short of those steps.
    OktaSimulator(upstream.base_url, token=TOKEN, governance=True).run_demo()


@pytest.mark.parametrize(
    "answer",
    [
        b"<html><body>Welcome</body></html>",
        b"[]",
        b'{"Resources": 5, "totalResults": 1e309, "id": 7, "members": "x", "active": "yes"}',
        b"",
    ],
)
def test_a_server_answering_nonsense_gets_a_report_not_a_traceback(
    proxy: Callable[[Rewrite], RewritingProxy], server: ServerThread, answer: bytes
) -> None:
    upstream = proxy(lambda method, path, sent, status, body: (200, answer))
    report = run(upstream.base_url, "spec", "crud", "groups", "entitlements")
    assert report.failed > 10 and not report.interrupted
    assert all(c.status in ("pass", "fail", "skip") for c in report.checks)
    assert all(c.detail for c in report.checks if c.status != "pass")
