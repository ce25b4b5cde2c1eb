"""The window's view of secrets and odd requests, from a real server: rows, detail pane, the
JSON Lines and HAR export files and the "Copy as curl" clipboard text."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
from PySide6.QtGui import QGuiApplication

from scim_desktop.config import AuthConfig, ServerConfig
from scim_desktop.gui.bridge import QtEventSink
from scim_desktop.gui.widgets.requests_view import RequestsView
from scim_desktop.server.runner import ServerThread
from tests.scim_client import ScimClient

TOKEN = "window-token-0123456789"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
HUGE = "999999999999999999999999"


def drive(base_url: str, failures: list[BaseException]) -> None:
    """What a hostile or careless client sends: secrets in odd spellings, a huge startIndex."""
    try:
        client = ScimClient(base_url, token=TOKEN)
        raw = (
            b'{"schemas":["' + USER.encode() + b'"],"userName":"w@example.com",'
            b'"p\\u0061ssword":"WINDOW-SECRET-1"}'
        )
        created = client.post("/Users", raw=raw)
        assert created.status == 201, created.raw
        ops = [{"op": "replace", "Path": "password", "Value": "WINDOW-SECRET-2"}]
        patch = {"schemas": [PATCH], "Operations": ops}
        assert client.patch(f"/Users/{created.body['id']}", patch).status == 200
        assert client.get("/Users?access_token=WINDOW-SECRET-3").status == 200
        assert client.get(f"/Users?startIndex={HUGE}&count=100").status == 200
        client.close()
    except BaseException as exc:  # reported on the test thread
        failures.append(exc)


def test_the_window_exports_and_curl_show_no_secret_and_every_request(
    qtbot: Any, tmp_path: Path
) -> None:
    sink = QtEventSink()
    view = RequestsView()
    qtbot.addWidget(view)
    sink.batch.connect(view.add_events)
    config = ServerConfig(
        port=0, db_path=tmp_path / "d.json", auth=AuthConfig("bearer", token=TOKEN)
    )
    server = ServerThread(config, sink)
    server.start()
    failures: list[BaseException] = []
    driver = threading.Thread(target=drive, args=(server.base_url, failures))
    try:
        driver.start()
        driver.join(20)
        qtbot.waitUntil(lambda: view.model.rowCount() >= 4, timeout=10_000)
    finally:
        server.stop()
    assert not failures, failures
    records = view.shown_records()
    assert [r.method for r in records] == ["POST", "PATCH", "GET", "GET"]
    assert records[3].query == f"startIndex={HUGE}&count=100"  # recorded, not lost

    shown: dict[str, str] = {"records": "\n".join(repr(r) for r in records)}
    for row in range(4):
        view.select_row(row)
        detail = view.detail
        shown[f"detail {row}"] = "\n".join(
            [
                detail.header_label.text(),
                detail.request_pane.body_text,
                detail.response_pane.body_text,
            ]
        )
        detail.copy_curl()
        shown[f"curl {row}"] = QGuiApplication.clipboard().text()
    for fmt in ("jsonl", "har"):
        target = tmp_path / f"log.{fmt}"
        with qtbot.waitSignal(view.exported, timeout=5000):
            view.export_to(target, fmt)
        shown[f"{fmt} export"] = target.read_text()

    for name, text in shown.items():
        assert "WINDOW-SECRET" not in text, name
        assert TOKEN not in text, name
    assert '"Value": "***"' in shown["detail 1"]  # the detail pane pretty-prints the body
    assert shown["curl 2"].count("access_token=***") == 1
    lines = [orjson.loads(line) for line in shown["jsonl export"].splitlines()]
    assert len(lines) == 4 and lines[3]["okta_page"] == str(int(HUGE) // 100 + 1)
    har = orjson.loads(shown["har export"])
    assert len(har["log"]["entries"]) == 4
