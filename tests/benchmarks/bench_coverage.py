"""Coverage tab benchmark: what feeding the checklist costs the GUI thread.

Records a realistic Okta session from a real server once (existence checks, creates, PATCH
deactivations, import pages, group pushes: the server's own records, bodies included), then
feeds N copies of those records through the Coverage tab's model in batches like the event
bridge's, and prints the time per record and per batch, the longest batch, and how long a
"Show in Requests" lookup takes in a log of N records (a scan from the newest end).

    python tests/benchmarks/bench_coverage.py [--records 100000] [--batch 500]

Bounded: loopback only, a fixed number of records, stops by itself. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PySide6.QtWidgets import QApplication

from scim_desktop.config import AuthConfig, ServerConfig
from scim_desktop.gui.widgets.coverage_view import CoverageView
from scim_desktop.gui.widgets.requests_view import RequestsView
from scim_desktop.server.events import RequestRecord
from scim_desktop.server.runner import ServerThread
from tests.conftest import RecordingSink
from tests.core.test_okta import DEACTIVATE
from tests.scim_client import ScimClient, filter_query
from tests.server.test_okta_flows import okta_create_body


def record_session() -> list[RequestRecord]:
    """A real server's records of Okta's common steps."""
    sink = RecordingSink()
    with tempfile.TemporaryDirectory() as tmp:
        config = ServerConfig(
            port=0, db_path=Path(tmp) / "d.json", auth=AuthConfig("bearer", token="t")
        )
        server = ServerThread(config, sink)
        server.start()
        client = ScimClient(server.base_url, token="t")
        try:
            for n in range(20):
                name = f"user{n}@example.com"
                client.get(
                    "/Users?" + filter_query(f'userName eq "{name}"') + "&startIndex=1&count=100"
                )
                uid = client.post("/Users", okta_create_body(name)).body["id"]
                client.patch(f"/Users/{uid}", DEACTIVATE)
            client.get("/Users?startIndex=1&count=100")
            client.get("/Groups?startIndex=1&count=100")
            client.get("/ServiceProviderConfig")  # a step no item needs
        finally:
            client.close()
            time.sleep(0.3)  # the last records are published just after their answers
            server.stop()
    return [e for e in sink.events if isinstance(e, RequestRecord)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    session = record_session()
    records = [session[n % len(session)] for n in range(args.records)]
    print(f"session: {len(session)} distinct records, fed {len(records):,} times")

    requests = RequestsView(row_cap=max(args.records, 1))
    view = CoverageView(requests)
    view.resize(1400, 800)
    view.show()
    app.processEvents()
    longest = 0.0
    start = time.perf_counter()
    for n in range(0, len(records), args.batch):
        batch = records[n : n + args.batch]
        t0 = time.perf_counter()
        view.apply_events(batch)
        longest = max(longest, time.perf_counter() - t0)
        # The model judges its queue in turns of JUDGE_SLICE_S on the event loop.
        while view.model.pending:
            t0 = time.perf_counter()
            app.processEvents()
            longest = max(longest, time.perf_counter() - t0)
    total = time.perf_counter() - start
    batches = -(-len(records) // args.batch)
    print(
        f"fed: {total:.2f} s in all, {total / len(records) * 1e6:.1f} us per record, "
        f"{total / batches * 1000:.1f} ms per batch of {args.batch} "
        f"(longest turn on the GUI thread {longest * 1000:.1f} ms)"
    )
    print("checklist:", view.model.summary())

    # "Show in Requests" on the oldest record: the worst case of the scan.
    requests.model.add_records(records)
    oldest = requests.model.record(0)
    t0 = time.perf_counter()
    found = view.show_request(str(oldest.id))
    print(
        f"show_request in a log of {requests.model.rowCount():,}: "
        f"{(time.perf_counter() - t0) * 1000:.1f} ms (found: {found})"
    )


if __name__ == "__main__":
    main()
