"""PATCH bodies whose work grew as operations x values, tried against a group: figures, printed.

    python tests/hostile/patch_work.py [--members 1000]

Starts ``scim-desktop serve`` (127.0.0.1, a free port, data in a temporary folder), creates
``--members`` users and a group of all of them, then sends each PATCH below (each under the
1 MB ``--max-body``; the group refilled before each) while another client asks for
``/ServiceProviderConfig`` in a loop, and prints how long the PATCH took and the other
client's longest wait (how long the event loop was held).

Before the review (``core/patch.py`` applying one operation at a time and comparing values by
scanning), with 1,000 members: 11,627 ``remove members[value eq "id"]`` operations 5.5 s,
``remove members`` listing 20,000 values 7.5 s, ``add members`` listing 6,000 values 1.2 s,
1,000 filter removes 0.5 s, about 10,000 one-value adds 10.7 s (in-process), each time
the other client waiting as long.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TOKEN = "patch-work-token"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BASE_URL_RE = re.compile(r"Base URL:\s+http://127\.0\.0\.1:(\d+)")


def request(port: int, method: str, path: str, body: bytes = b"") -> tuple[int, bytes, float]:
    with socket.create_connection(("127.0.0.1", port), timeout=300) as sock:
        started = time.perf_counter()
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/scim+json\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        took = time.perf_counter() - started
    head, _, answer = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), answer, took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "scim_desktop", "serve", "--port", "0"),
                *("--token", TOKEN, "--db", str(Path(folder) / "data.json")),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert proc.stdout is not None
            port = 0
            while not port:
                line = proc.stdout.readline()
                if not line:
                    raise SystemExit("the server did not start")
                if m := BASE_URL_RE.search(line):
                    port = int(m.group(1))
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            run(port, args.members)
            run_primary(port)
        finally:
            proc.terminate()
            proc.wait(10)


def run(port: int, count: int) -> None:
    ids = []
    for i in range(count):
        body = json.dumps({"schemas": [USER], "userName": f"p{i}@example.com"}).encode()
        ids.append(json.loads(request(port, "POST", "/scim/v2/Users", body)[1])["id"])
    members = [{"value": i} for i in ids]
    body = json.dumps({"schemas": [GROUP], "displayName": "big", "members": members}).encode()
    gid = json.loads(request(port, "POST", "/scim/v2/Groups", body)[1])["id"]
    refill = {"op": "replace", "path": "members", "value": members}

    def ops(operations: list[dict[str, object]]) -> bytes:
        return json.dumps({"schemas": [PATCH], "Operations": operations}).encode()

    absent = [{"value": f"{i:08d}-0000-0000-0000-000000000000"} for i in range(20000)]
    one_remove = len(json.dumps({"op": "remove", "path": f'members[value eq "{ids[0]}"]'}))
    many = (1_000_000 - 200) // (one_remove + 2)
    adds = many * 9 // 10  # (an add is a little longer)
    cases = {
        f"{many:,} x remove members[value eq id]": ops(
            [{"op": "remove", "path": f'members[value eq "{ids[i % count]}"]'} for i in range(many)]
        ),
        "remove members listing 20,000 absent values": ops(
            [{"op": "remove", "path": "members", "value": absent}]
        ),
        f"add members listing {6 * count:,} (present) values": ops(
            [{"op": "add", "path": "members", "value": members * 6}]
        ),
        f"{adds:,} x add members, one value each": ops(
            [{"op": "add", "path": "members", "value": [m]} for m in (members * 12)[:adds]]
        ),
        "1,000 x remove members[value eq id]": ops(
            [{"op": "remove", "path": f'members[value eq "{ids[i % count]}"]'} for i in range(1000)]
        ),
        "1,000 x add members, one value each": ops(
            [{"op": "add", "path": "members", "value": [m]} for m in (members * 2)[:1000]]
        ),
    }
    print(f"group of {count:,} members; each PATCH under the 1 MB --max-body")
    for name, body in cases.items():
        request(port, "PATCH", f"/scim/v2/Groups/{gid}", ops([refill]))
        waits: list[float] = []
        stop = threading.Event()
        thread = threading.Thread(target=_other_client, args=(port, stop, waits))
        thread.start()
        time.sleep(0.1)
        status, _, took = request(port, "PATCH", f"/scim/v2/Groups/{gid}", body)
        time.sleep(0.05)
        stop.set()
        thread.join()
        print(
            f"  {name:48s} {status} in {took * 1000:7.0f} ms ({len(body):,} bytes); "
            f"other client's longest wait {max(waits) * 1000:6.0f} ms"
        )


def run_primary(port: int) -> None:
    """The costliest PATCH the operation limit allows: each add makes a value primary, which
    demotes every other value, applied one at a time."""
    emails = [{"value": f"e{i}@example.com", "type": "work"} for i in range(3000)]
    body = json.dumps({"schemas": [USER], "userName": "many-emails@example.com", "emails": emails})
    uid = json.loads(request(port, "POST", "/scim/v2/Users", body.encode())[1])["id"]
    adds = [
        {"op": "add", "path": "emails", "value": [{"value": f"n{i}@example.com", "primary": True}]}
        for i in range(1000)
    ]
    waits: list[float] = []
    stop = threading.Event()
    thread = threading.Thread(target=_other_client, args=(port, stop, waits))
    thread.start()
    time.sleep(0.1)
    patch = json.dumps({"schemas": [PATCH], "Operations": adds}).encode()
    status, _, took = request(port, "PATCH", f"/scim/v2/Users/{uid}", patch)
    time.sleep(0.05)
    stop.set()
    thread.join()
    name = "1,000 x add a primary email (3,000 emails)"
    print(
        f"  {name:48s} {status} in {took * 1000:7.0f} ms ({len(patch):,} bytes); "
        f"other client's longest wait {max(waits) * 1000:6.0f} ms"
    )


def _other_client(port: int, stop: threading.Event, waits: list[float]) -> None:
    while not stop.is_set():
        waits.append(request(port, "GET", "/scim/v2/ServiceProviderConfig")[2])


if __name__ == "__main__":
    main()
