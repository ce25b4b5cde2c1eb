"""``scim-desktop coverage FILE...`` over real recorded sessions: a ``serve --log jsonl``
subprocess driven by the Okta look-alike, and the window's HAR and JSON Lines exports
(gui/export.py) of records from a real server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from scim_desktop.cli import main
from scim_desktop.core.catalog import parse_catalog
from scim_desktop.core.coverage import ITEMS
from scim_desktop.gui.export import har_bytes, to_jsonl
from scim_desktop.okta_sim import GROUP_SCHEMA, OktaSimulator
from scim_desktop.server.events import RequestRecord
from scim_desktop.server.runner import ServerThread
from tests.conftest import TOKEN, RecordingSink
from tests.gui.test_governance import CATALOG
from tests.test_cli import BASE_URL_RE, Served

MANUAL = {i.id for i in ITEMS if i.manual}
#: What the look-alike's demo plus drive()'s extra steps cannot show: nothing since the demo
#: imports groups and runs the SPEC suite (okta_sim, issue 16); kept so a gap shows by name.
NOT_SEEN: set[str] = set()


def drive(base_url: str, token: str) -> None:
    """Okta's flows: the look-alike's demo, then what it does not send (an empty group pushed
    and read, a user linked after an existence check that found it, a group deleted twice)."""
    OktaSimulator(base_url, token=token).run_demo()
    sim = OktaSimulator(base_url, token=token)
    try:
        group = sim.request(
            "POST",
            "/Groups",
            {"schemas": [GROUP_SCHEMA], "displayName": "Empty", "members": []},
        ).body
        gid = group["id"]
        # Push Now of a group with no members (OKTA.md: must empty the group, not fail).
        sim.request(
            "PATCH",
            f"/Groups/{gid}",
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "members", "value": []}],
            },
        )
        sim.request("GET", f"/Groups/{gid}")
        # OKTA.md, Create step 3: the existence check finds the user; Okta links with GET, PUT.
        found = sim.existence_check("jane.doe@example.com").body["Resources"][0]
        user = sim.request("GET", f"/Users/{found['id']}").body
        sim.request("PUT", f"/Users/{found['id']}", {k: v for k, v in user.items() if k != "meta"})
        sim.request("DELETE", f"/Groups/{gid}")
        sim.request("DELETE", f"/Groups/{gid}")  # gone: 404, which Okta reports as a failure
    finally:
        sim.close()


def statuses_of(doc: dict[str, Any]) -> dict[str, str]:
    return {item["id"]: item["status"] for item in doc["items"]}


def expected(failed: set[str]) -> dict[str, str]:
    out = {}
    for item in ITEMS:
        if item.manual:
            out[item.id] = "manual"
        elif item.id in failed:
            out[item.id] = "failed"
        elif item.id in NOT_SEEN:
            out[item.id] = "not_seen"
        else:
            out[item.id] = "covered"
    return out


def test_a_serve_jsonl_session_ticks_the_checklist(served: list[Served], tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(CATALOG), encoding="utf-8")
    s = Served(
        [
            *("--port", "0", "--db", str(tmp_path / "d.json"), "--token", "tok", "--log", "jsonl"),
            *("--catalog", str(catalog)),
            # The first group delete fails: its item must show failed with the reason.
            *("--fault", "status=500,step=push_group_delete,count=1"),
        ]
    )
    served.append(s)
    base = s.wait_for(BASE_URL_RE, "stderr")
    drive(base, "tok")
    assert s.stop() == 0
    log = tmp_path / "session.jsonl"
    log.write_text("\n".join(s.stdout_lines) + "\n", encoding="utf-8")
    out_json, out_md = tmp_path / "coverage.json", tmp_path / "coverage.md"

    reports = ("--json", str(out_json), "--markdown", str(out_md))
    done = subprocess.run(
        [sys.executable, "-m", "scim_desktop", "coverage", str(log), *reports],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(out_json.read_text(encoding="utf-8"))
    assert statuses_of(doc) == expected({"unlink_delete_group"})
    by_id = {item["id"]: item for item in doc["items"]}
    delete = by_id["unlink_delete_group"]
    # The fault failed the first delete (the demo's: failures are listed first); drive()'s
    # group was then deleted (204) and deleted again (404, which Okta reports as a failure).
    assert [(e["status"], e["ok"]) for e in delete["evidence"]] == [
        (500, False),
        (404, False),
        (204, True),
    ]
    assert delete["evidence"][0]["reason"].startswith("answered 500")
    assert delete["evidence"][0]["id"] == "session.jsonl#" + str(
        1 + next(n for n, line in enumerate(s.stdout_lines) if '"DELETE"' in line)
    )
    creates = by_id["create_user"]["evidence"]
    assert len(creates) == 8 and {(e["method"], e["status"]) for e in creates} == {("POST", 201)}
    assert all(e["target"] == "/scim/v2/Users" for e in creates)

    # stdout: one line per item (status, title, evidence count), then the summary.
    lines = done.stdout.splitlines()
    assert len(lines) == len(ITEMS) + 1
    assert re.fullmatch(r"covered\s+Assign a new user: create\s+8", lines[2])
    failed = next(line for line in lines if "Unlink a push group and delete" in line)
    assert re.fullmatch(
        r"failed\s+Unlink a push group and delete it in the app\s+3  answered 500: .*", failed
    )
    covered = len(ITEMS) - len(NOT_SEEN) - len(MANUAL) - 1
    assert (
        lines[-1]
        == f"{covered} of {len(ITEMS)} covered, 1 failed, {len(NOT_SEEN)} not seen, 6 manual"
    )

    md = out_md.read_text(encoding="utf-8")
    assert re.search(r"^Generated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC by SCIM Desktop\.$", md, re.M)
    assert re.search(
        r"^\| ❌ failed \| Unlink a push group and delete it in the app \(answered 500.*\) \| 3 \|",
        md,
        re.M,
    )
    assert "| ✅ covered | Entitlements: grant |" in md
    assert f"`{delete['evidence'][0]['id']}`" in md and "FAILED: answered 500" in md


@pytest.fixture
def session(server: ServerThread, sink: RecordingSink) -> list[RequestRecord]:
    """The records of a real server that Okta's flows went through (as the window holds them)."""
    server.set_catalog(parse_catalog(CATALOG)).result(10)
    drive(server.base_url, TOKEN)

    def records() -> list[RequestRecord]:
        return [e for e in sink.events if isinstance(e, RequestRecord)]

    # A record is published just after its answer is sent: wait for the last request's (the
    # second DELETE, answered 404) before the session is taken.
    deadline = time.monotonic() + 10
    while not any(r.method == "DELETE" and r.status == 404 for r in records()):
        assert time.monotonic() < deadline, "the last request's record never arrived"
        time.sleep(0.01)
    return records()


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["coverage", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_har_and_jsonl_exports_read_the_same(
    session: list[RequestRecord], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    har = tmp_path / "session.har"
    har.write_bytes(har_bytes(session, "test"))
    jsonl = tmp_path / "session.jsonl"
    jsonl.write_text(to_jsonl(session), encoding="utf-8")
    # A HAR from another tool carries no Okta step: the requests are classified again, in
    # file order, with the catalog read from the recorded GET /ResourceTypes answer.
    bare = json.loads(har.read_bytes())
    for entry in bare["log"]["entries"]:
        for key in [k for k in entry if k.startswith("_")]:
            del entry[key]
    plain = tmp_path / "plain.har"
    plain.write_text(json.dumps(bare), encoding="utf-8")

    want = expected({"unlink_delete_group"})
    outputs = []
    for path in (har, jsonl, plain):
        out_json = tmp_path / f"{path.name}.json"
        rc, out, err = run_cli(capsys, str(path), "--json", str(out_json))
        assert rc == 0 and err == ""
        doc = json.loads(out_json.read_text(encoding="utf-8"))
        assert statuses_of(doc) == want, path.name
        outputs.append(out)
        delete = next(i for i in doc["items"] if i["id"] == "unlink_delete_group")
        # The demo's unlink-and-delete and drive()'s first delete worked (204); drive()'s
        # second found nothing (404): Okta fails that one (failures first).
        assert [(e["status"], e["ok"]) for e in delete["evidence"]] == [
            (404, False),
            (204, True),
            (204, True),
        ]
        assert delete["evidence"][0]["id"].startswith(f"{path.name}#")
    assert outputs[0] == outputs[1] == outputs[2]

    # Several files read as one session, one after the other: the counts add up.
    rc, out, _ = run_cli(capsys, str(jsonl), str(har), "--json", str(tmp_path / "both.json"))
    doc = json.loads((tmp_path / "both.json").read_text(encoding="utf-8"))
    counts = {i["id"]: i["count"] for i in doc["items"]}
    one = json.loads((tmp_path / "session.jsonl.json").read_text(encoding="utf-8"))
    assert counts == {i["id"]: 2 * i["count"] for i in one["items"]}


def test_a_file_that_cannot_be_read_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "empty.jsonl"
    good.write_text("", encoding="utf-8")
    bad_json = tmp_path / "notes.txt"
    bad_json.write_text("hello\n", encoding="utf-8")
    not_a_record = tmp_path / "list.jsonl"
    not_a_record.write_text("[1, 2]\n", encoding="utf-8")
    har_without_entries = tmp_path / "x.har"
    har_without_entries.write_text('{"log": {"version": "1.2"}}', encoding="utf-8")
    cases = {
        tmp_path / "missing.jsonl": "cannot read it",
        tmp_path: "cannot read it",  # a directory
        bad_json: "line 1 is not JSON",
        not_a_record: "line 1 is not a recorded request",
        har_without_entries: "a HAR file without log.entries",
    }
    for path, message in cases.items():
        rc, out, err = run_cli(capsys, str(good), str(path))
        assert rc == 2, path
        assert out == "" and err.count("\n") == 1
        assert err.startswith(f"scim-desktop coverage: error: {path}: {message}")
    # An empty session is no error: every item is simply not seen.
    rc, out, err = run_cli(capsys, str(good), "--json", str(tmp_path / "e.json"))
    assert rc == 0 and err == ""
    assert set(statuses_of(json.loads((tmp_path / "e.json").read_text())).values()) == {
        "not_seen",
        "manual",
    }
    # A report that cannot be written is one line too.
    rc, out, err = run_cli(capsys, str(good), "--markdown", str(tmp_path / "no" / "dir.md"))
    assert rc == 2 and err.startswith("scim-desktop coverage: error: cannot write the report")


def test_the_subcommand_does_not_load_qt_or_tornado(tmp_path: Path) -> None:
    empty = tmp_path / "e.jsonl"
    empty.write_text("", encoding="utf-8")
    code = (
        "import sys; from scim_desktop.cli import main; rc = main(['coverage', sys.argv[1]]); "
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'tornado'))]; "
        "print(rc, bad)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(empty)], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.splitlines()[-1] == "0 []", done.stderr


def test_html_report_from_a_recorded_session(
    session: list[RequestRecord], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonl = tmp_path / "a<b>.jsonl"  # a file name is text in the page, never markup
    jsonl.write_text(to_jsonl(session), encoding="utf-8")
    out_html, out_md = tmp_path / "coverage.html", tmp_path / "coverage.md"
    rc, out, err = run_cli(capsys, str(jsonl), "--html", str(out_html), "--markdown", str(out_md))
    assert rc == 0 and err == ""
    page = out_html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "a&lt;b&gt;.jsonl" in page
    assert "<b>" not in page
    summary_line = out.splitlines()[-1]  # the printed summary, in the page with its dots
    assert summary_line.replace(", ", " · ") in page
    # The same evidence as the Markdown report: every record id it names is in the page.
    ids = set(re.findall(r"^- `([^`]+)`", out_md.read_text(encoding="utf-8"), re.M))
    assert ids and all(
        f"<code>{i.replace('<', '&lt;').replace('>', '&gt;')}</code>" in page for i in ids
    )


# --- hostile and odd files -----------------------------------------------------------------------
def test_a_har_pretty_printed_with_a_bom_or_on_one_line_over_the_line_cap_is_read(
    session: list[RequestRecord],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc = json.loads(har_bytes(session, "test"))
    pretty = tmp_path / "pretty.har"  # as browsers write it
    pretty.write_bytes(b"\xef\xbb\xbf" + json.dumps(doc, indent=2).encode())
    one_line = tmp_path / "one.har"
    one_line.write_bytes(har_bytes(session, "test"))
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + to_jsonl(session).encode())
    # A one-line HAR is one long line: the line cap of JSON Lines does not apply to it.
    monkeypatch.setattr("scim_desktop.coverage_files.MAX_LINE_BYTES", 64 * 1024)
    assert len(one_line.read_bytes()) > 64 * 1024
    want = expected({"unlink_delete_group"})
    for path in (pretty, one_line, jsonl):
        out_json = tmp_path / f"{path.name}.json"
        rc, _out, err = run_cli(capsys, str(path), "--json", str(out_json))
        assert rc == 0 and err == "", path.name
        assert statuses_of(json.loads(out_json.read_text(encoding="utf-8"))) == want


def test_a_har_over_the_cap_or_a_line_over_the_cap_is_one_line_and_exit_2(
    session: list[RequestRecord],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("scim_desktop.coverage_files.MAX_HAR_BYTES", 4096)
    monkeypatch.setattr("scim_desktop.coverage_files.MAX_LINE_BYTES", 4096)
    monkeypatch.setattr("scim_desktop.coverage_files.MAX_HAR_CONTAINERS", 1000)
    har = tmp_path / "big.har"
    har.write_text(json.dumps(json.loads(har_bytes(session, "test")), indent=1), "utf-8")
    endless = tmp_path / "endless.jsonl"  # no line break at all: not read whole
    endless.write_bytes(b'{"method": "GET", "path": "/scim/v2/Users", "x": "' + b"x" * 10_000)
    late = tmp_path / "late.jsonl"  # a good record, then a huge line
    late.write_text(to_jsonl(session[:1]) + "[" + " " * 10_000 + "]\n", encoding="utf-8")
    many = tmp_path / "many.har"  # 3.6 KB, but 1,200 objects: each costs memory parsed
    many.write_text('{"log": {"entries": [' + ",".join(["{}"] * 1200) + "]}}", "utf-8")
    cases = {
        har: "not JSON Lines, and as one JSON document (a HAR file) it is over 0 MB",
        many: "a JSON document (a HAR file) of more than 1,000 objects and arrays",
        endless: "not JSON Lines, and as one JSON document",
        late: "line 2 is over 0 MB",
    }
    for path, message in cases.items():
        rc, out, err = run_cli(capsys, str(path))
        assert rc == 2 and out == "" and err.count("\n") == 1, path.name
        assert err.startswith(f"scim-desktop coverage: error: {path}: {message}"), err


def test_odd_records_are_read_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fields of every wrong type and value (a file is anyone's): each file reads (exit 0) or
    is one line (exit 2), never a traceback."""
    odd: list[Any] = [None, True, -1, 10**19, 1e308, "", [], {}, [[1]], "\x00\u202e"]
    odd += ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "/scim/v2/Users/%zz?%"]
    good = {
        "time": "2026-12-05T05:00:00+00:00",
        "method": "POST",
        "path": "/scim/v2/Users",
        "status": 201,
        "request": {"headers": {"User-Agent": "Okta SCIM Client 1.0.0"}, "body": "{}"},
        "response": {"headers": {}, "body": '{"id": "1"}'},
    }
    keys = [*good, "query", "duration_ms", "okta_step", "okta_label", "okta_retry_gives_up"]
    lines, entries = [], []
    for n, value in enumerate(odd):
        for key in keys:
            lines.append(json.dumps({**good, key: value}))
            request = {"method": "GET", "url": "http://h/scim/v2/Users", "headers": value}
            entries.append(
                {
                    "startedDateTime": value,
                    "time": value,
                    "request": {**request, **({key: value} if n % 2 else {"postData": value})},
                    "response": {"status": value, "content": value, "headers": value},
                    "_oktaStep": value if n % 3 else None,
                }
            )
    (tmp_path / "odd.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "odd.har").write_text(json.dumps({"log": {"entries": entries}}), "utf-8")
    for name in ("odd.jsonl", "odd.har"):
        reports = [f"--{k}" for k in ("json", "markdown", "html")]
        outs = [str(tmp_path / f"{name}.{k}") for k in ("json", "md", "html")]
        rc, out, err = run_cli(
            capsys, str(tmp_path / name), *(x for p in zip(reports, outs, strict=True) for x in p)
        )
        assert rc == 0 and err == "", name
        assert out.splitlines()[-1].endswith("6 manual")


#: Text a recorded session may carry anywhere: markup, a Markdown link and table breakers.
EVIL = "<script>alert(1)</script>|x\n# H\r\n[a](javascript:alert(1)) <img src=x onerror=alert(1)>"


def _evil_session(tmp_path: Path) -> Path:
    path = tmp_path / "evil.jsonl"
    records = [
        {
            "time": EVIL,
            "method": method,
            "path": f"/scim/v2/Users/{EVIL}",
            "query": f"q={EVIL}",
            "status": status,
            "okta_step": step,
            "okta_label": EVIL,
            "okta_explanation": EVIL,
            "request": {"headers": {}, "body": EVIL},
            "response": {"headers": {}, "body": json.dumps({"detail": EVIL})},
        }
        for step, method, status in [("create_user", "POST", 500), ("read_user", "GET", 200)]
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def _reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    html_out, md_out = tmp_path / "r.html", tmp_path / "r.md"
    session = str(_evil_session(tmp_path))
    rc, _, err = run_cli(capsys, session, "--html", str(html_out), "--markdown", str(md_out))
    assert rc == 0 and err == ""
    return html_out.read_text(encoding="utf-8"), md_out.read_text(encoding="utf-8")


def test_text_from_a_file_is_text_in_the_html_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page, _ = _reports(tmp_path, capsys)
    assert "&lt;script&gt;alert(1)" in page  # shown, as text
    for markup in ("<script>alert", "<img", 'href="javascript', "href='javascript"):
        assert markup not in page


def test_text_from_a_file_is_text_in_the_markdown_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, report = _reports(tmp_path, capsys)
    # Outside code spans (where everything is literal) and backslash escapes (CommonMark §2.4),
    # no markup and no link may remain.
    prose = re.sub(r"\\.", "", re.sub(r"`[^`\n]*`", "", report))
    for markup in ("<script", "<img", "](javascript:"):
        assert markup not in prose
    table = [line for line in report.splitlines() if line.startswith("| ")]
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 5 for line in table)
