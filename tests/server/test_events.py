"""Redaction of secrets in request records (logs, the window, exports)."""

from __future__ import annotations

import io
import json
import time

from scim_desktop.server.events import (
    escape_controls,
    redact_body,
    redact_headers,
)
from scim_desktop.server.log_sinks import TextSink
from tests.gui.test_export import make_record


def test_passwords_are_redacted_in_every_form() -> None:
    body = {
        "password": "a1",
        "Password": "a2",
        "urn:ietf:params:scim:schemas:core:2.0:User:password": "a3",
        "urn:ietf:params:scim:schemas:core:2.0:User": {"password": "a4"},
        "Operations": [
            {"op": "replace", "path": "PASSWORD", "value": "a5"},
            {
                "op": "replace",
                "path": "urn:ietf:params:scim:schemas:core:2.0:User:password",
                "value": "a6",
            },
            {
                "op": "replace",
                "value": {"urn:ietf:params:scim:schemas:core:2.0:User:password": "a7"},
            },
        ],
        "userName": "kept",
    }
    text = redact_body(json.dumps(body).encode())
    assert not any(f"a{i}" in text for i in range(1, 8))
    assert "kept" in text


def test_broken_json_still_hides_passwords() -> None:
    text = redact_body(b'{"userName": "x", "password": "s3cr3t", "urn:x:password": "p2", ')
    assert "s3cr3t" not in text and "p2" not in text and "userName" in text


def test_authorization_headers_keep_only_the_scheme() -> None:
    out = redact_headers({"Authorization": "Bearer abc", "Cookie": "sid=1", "Accept": "x"})
    assert out == {"Authorization": "Bearer ***", "Cookie": "***", "Accept": "x"}


def test_the_text_log_shows_control_characters_escaped() -> None:
    """A terminal must not obey escape sequences a client put in a request line."""
    assert escape_controls("plain é ✓") == "plain é ✓"
    assert escape_controls("a\x1b[2Kb\x07\x9b\x7f") == "a\\x1b[2Kb\\x07\\x9b\\x7f"
    stream = io.StringIO()
    sink = TextSink(stream)
    sink.publish(make_record(method="?", path="\x1b]0;owned\x07", status=400))
    sink.close()
    line = stream.getvalue()
    assert "\x1b" not in line and "\x07" not in line and "\\x1b]0;owned\\x07" in line


def test_log_lines_are_written_by_the_sink_thread_in_order_and_all_at_close() -> None:
    stream = io.StringIO()
    sink = TextSink(stream)
    records = [make_record(i, method="GET", path=f"/scim/v2/Users/{i}") for i in range(2000)]
    for record in records[:1000]:
        sink.publish(record)
    deadline = time.monotonic() + 5
    while stream.getvalue().count("\n") < 1000 and time.monotonic() < deadline:
        time.sleep(0.01)  # the flusher writes within FLUSH_INTERVAL_S
    assert stream.getvalue().count("\n") == 1000
    for record in records[1000:]:
        sink.publish(record)
    sink.close()
    lines = stream.getvalue().splitlines()
    assert [line.split()[2] for line in lines] == [f"/scim/v2/Users/{i}" for i in range(2000)]
