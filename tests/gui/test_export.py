"""Exports of the request log: JSON Lines (as the headless log), HAR 1.2 and curl."""

from __future__ import annotations

import io
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from scim_desktop.config import AuthConfig, ServerConfig
from scim_desktop.gui.export import record_url, to_curl, to_har, to_jsonl
from scim_desktop.server.events import RequestRecord
from scim_desktop.server.log_sinks import JsonLinesSink
from scim_desktop.server.runner import ServerThread
from tests.conftest import RecordingSink
from tests.scim_client import ScimClient

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


def user_body(user_name: str = "jane.doe@example.com") -> str:
    return orjson.dumps(
        {
            "schemas": [USER_SCHEMA],
            "userName": user_name,
            "name": {"givenName": "Jane", "familyName": "O'Doe"},
            "emails": [{"primary": True, "value": user_name, "type": "work"}],
            "password": "***",
            "active": True,
        }
    ).decode()


def make_record(
    rid: int = 1,
    *,
    method: str = "POST",
    path: str = "/scim/v2/Users",
    query: str = "",
    status: int = 201,
    request_body: str | None = None,
    response_body: str | None = None,
    request_headers: dict[str, str] | None = None,
    okta_step: str | None = "create_user",
    okta_label: str | None = "Create user jane.doe@example.com",
    fault: str | None = None,
    extra: dict[str, Any] | None = None,
    time: str = "2026-11-29T13:20:20.123Z",
) -> RequestRecord:
    """A record as the server builds it (already redacted)."""
    if request_body is None:
        request_body = user_body() if method in ("POST", "PUT") else ""
    if response_body is None:
        response_body = orjson.dumps({"id": f"id-{rid}", "userName": "jane.doe@example.com"})
        response_body = response_body.decode()
    headers = {
        "Host": "127.0.0.1:8080",
        "User-Agent": "Okta SCIM Client 1.0.0",
        "Accept": "application/scim+json",
        "Accept-Encoding": "gzip,deflate",
        "Authorization": "Bearer ***",
    }
    if request_body:
        headers["Content-Type"] = "application/scim+json; charset=utf-8"
        headers["Content-Length"] = str(len(request_body.encode()))
    if request_headers is not None:
        headers = request_headers
    return RequestRecord(
        id=rid,
        time=time,
        method=method,
        path=path,
        query=query,
        status=status,
        duration_ms=1.234,
        client="127.0.0.1",
        request_headers=headers,
        request_body=request_body,
        response_headers={"Content-Type": "application/scim+json; charset=utf-8"},
        response_body=response_body,
        okta_step=okta_step,
        okta_label=okta_label,
        okta_explanation="Okta creates the user; it expects 201." if okta_label else None,
        fault=fault,
        extra=extra or {},
    )


def sample_records() -> list[RequestRecord]:
    return [
        make_record(1),
        make_record(
            2,
            method="GET",
            query="filter=userName%20eq%20%22jane%40example.com%22&startIndex=1&count=100",
            status=200,
            okta_step="create_user_existence_check",
            okta_label="Create user: existence check for jane@example.com",
        ),
        make_record(
            3,
            status=429,
            fault="429 Retry-After: 30 on POST /Users",
            extra={"okta_retry": 1, "okta_next_retry_in_s": 60.0},
        ),
        make_record(
            4,
            method="GET",
            path="/scim/v2/Groups",
            status=0,
            okta_step=None,
            okta_label=None,
            response_body="",
            extra={"okta_page": 1},
        ),
    ]


# --- JSON Lines -------------------------------------------------------------------------------
def test_jsonl_is_what_the_headless_log_writes() -> None:
    records = sample_records()
    stream = io.StringIO()
    sink = JsonLinesSink(stream)
    for record in records:
        sink.publish(record)
    sink.close()  # written by the sink's own thread; close() writes what is left
    expected = [orjson.loads(line) for line in stream.getvalue().splitlines()]

    text = to_jsonl(records)
    assert text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) == len(records)
    exported = [orjson.loads(line) for line in lines]
    for mine, theirs in zip(exported, expected, strict=True):
        assert list(mine) == list(theirs)  # same keys in the same order
        assert mine == theirs
    assert exported[2]["okta_retry"] == 1  # extra fields are flattened in, as the sink does


def test_jsonl_of_nothing_is_empty() -> None:
    assert to_jsonl([]) == ""


# --- HAR 1.2 ----------------------------------------------------------------------------------
def _check_har_headers(items: Any) -> None:
    assert isinstance(items, list)
    for item in items:
        assert set(item) == {"name", "value"}
        assert isinstance(item["name"], str) and isinstance(item["value"], str)


def check_har(har: dict[str, Any]) -> None:
    """The required fields of HAR 1.2 (softwareishard.com/blog/har-12-spec) and their types."""
    log = har["log"]
    assert log["version"] == "1.2"
    assert isinstance(log["creator"]["name"], str) and isinstance(log["creator"]["version"], str)
    assert isinstance(log["entries"], list)
    for entry in log["entries"]:
        assert isinstance(entry["startedDateTime"], str)
        assert isinstance(entry["time"], int | float) and entry["time"] >= 0
        assert entry["cache"] == {}
        timings = entry["timings"]
        for key in ("send", "wait", "receive"):
            assert isinstance(timings[key], int | float)
        request = entry["request"]
        assert isinstance(request["method"], str)
        assert request["url"].startswith(("http://", "https://"))
        assert isinstance(request["httpVersion"], str)
        assert request["cookies"] == []
        _check_har_headers(request["headers"])
        _check_har_headers(request["queryString"])
        assert request["headersSize"] == -1
        assert isinstance(request["bodySize"], int)
        if "postData" in request:
            assert isinstance(request["postData"]["mimeType"], str)
            assert isinstance(request["postData"]["text"], str)
        response = entry["response"]
        assert isinstance(response["status"], int)
        assert isinstance(response["statusText"], str)
        assert isinstance(response["httpVersion"], str)
        assert response["cookies"] == []
        _check_har_headers(response["headers"])
        content = response["content"]
        assert isinstance(content["size"], int) and isinstance(content["mimeType"], str)
        assert isinstance(content.get("text", ""), str)
        assert isinstance(response["redirectURL"], str)
        assert response["headersSize"] == -1
        assert isinstance(response["bodySize"], int)


def test_har_is_structurally_valid() -> None:
    records = sample_records()
    har = to_har(records, "1.2.3")
    check_har(har)
    # It survives serialisation unchanged (what the export writes).
    assert orjson.loads(orjson.dumps(har, option=orjson.OPT_INDENT_2)) == har
    assert har["log"]["creator"] == {"name": "SCIM Desktop", "version": "1.2.3"}
    entries = har["log"]["entries"]
    assert len(entries) == len(records)

    post = entries[0]
    assert post["request"]["url"] == "http://127.0.0.1:8080/scim/v2/Users"
    assert post["request"]["postData"]["text"] == records[0].request_body
    assert post["request"]["postData"]["mimeType"].startswith("application/scim+json")
    assert post["request"]["bodySize"] == len(records[0].request_body.encode())
    assert post["response"]["status"] == 201
    assert post["response"]["statusText"] == "Created"
    assert post["response"]["content"]["text"] == records[0].response_body
    assert post["_oktaStep"] == "create_user"
    assert post["_oktaLabel"] == "Create user jane.doe@example.com"
    assert post["_fault"] is None
    assert post["timings"]["wait"] == post["time"] == 1.234

    check = entries[1]
    assert "postData" not in check["request"]
    assert {"name": "filter", "value": 'userName eq "jane@example.com"'} in check["request"][
        "queryString"
    ]
    assert check["request"]["url"].endswith("?" + records[1].query)
    assert entries[2]["_fault"] == "429 Retry-After: 30 on POST /Users"
    assert entries[2]["response"]["statusText"] == "Too Many Requests"
    assert entries[3]["response"]["status"] == 0  # dropped: no answer at all
    # Secrets stay as the server redacted them.
    assert "Bearer ***" in orjson.dumps(har).decode()


def test_har_url_follows_the_tunnel() -> None:
    record = make_record(
        request_headers={"Host": "demo.example.ngrok.app", "X-Forwarded-Proto": "https"}
    )
    assert record_url(record) == "https://demo.example.ngrok.app/scim/v2/Users"
    entry = to_har([record], "1")["log"]["entries"][0]
    assert entry["request"]["url"] == "https://demo.example.ngrok.app/scim/v2/Users"


# --- curl -------------------------------------------------------------------------------------
def test_curl_is_a_shell_command_with_method_url_and_body() -> None:
    record = make_record(query="attributes=userName")
    command = to_curl(record)
    words = shlex.split(command)
    assert words[0] == "curl"
    assert words[words.index("-X") + 1] == "POST"
    assert "http://127.0.0.1:8080/scim/v2/Users?attributes=userName" in words
    assert words[words.index("--data-raw") + 1] == record.request_body  # the O'Doe quote too
    headers = [words[i + 1] for i, w in enumerate(words) if w == "-H"]
    assert "Content-Type: application/scim+json; charset=utf-8" in headers
    assert "User-Agent: Okta SCIM Client 1.0.0" in headers
    names = {h.split(":", 1)[0].lower() for h in headers}
    assert not names & {"content-length", "host", "accept-encoding"}


def test_curl_keeps_the_token_out() -> None:
    command = to_curl(make_record(method="GET", status=200))
    assert "***" not in command
    assert '-H "Authorization: Bearer $TOKEN"' in command  # the shell fills it in
    words = shlex.split(command)
    assert "Authorization: Bearer $TOKEN" in words
    assert "--data-raw" not in words
    basic = make_record(request_headers={"Host": "h", "Authorization": "Basic ***"})
    assert '"Authorization: Basic $BASIC_CREDENTIALS"' in to_curl(basic)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_command_runs_against_the_server(tmp_path: Path) -> None:
    """The copied command really repeats the request (with TOKEN set in the environment)."""
    token = "curl-test-token-123"
    recorder = RecordingSink()
    config = ServerConfig(
        port=0, db_path=tmp_path / "d.json", auth=AuthConfig("bearer", token=token)
    )
    server = ServerThread(config, recorder)
    server.start()
    try:
        client = ScimClient(server.base_url, token=token)
        body = orjson.loads(user_body("curl.user@example.com"))
        body["password"] = "Secret-123"
        assert client.post("/Users", body).status == 201
        client.close()
        deadline = time.monotonic() + 5  # the record is published just after the answer
        while not any(isinstance(e, RequestRecord) for e in recorder.events):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        record = next(e for e in recorder.events if isinstance(e, RequestRecord))
        assert record.request_headers["Authorization"] == "Bearer ***"
        # Replaying the create gives 409: the same userName exists (the request went through
        # authentication, so the token placeholder worked).
        command = to_curl(record) + " -s -o /dev/null -w '%{http_code}'"
        result = subprocess.run(
            ["bash", "-c", command],
            env={**os.environ, "TOKEN": token},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.stdout == "409", result.stderr
    finally:
        server.stop()
