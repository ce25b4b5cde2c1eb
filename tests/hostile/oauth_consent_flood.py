"""Anonymous authorization requests against the waiting consent table: figures, printed.

    python tests/hostile/oauth_consent_flood.py [--requests 1000] [--waves 5]

Starts the server in OAuth mode (in this process, on a free loopback port, data in a
temporary folder), opens one consent page as "the user", then sends waves of anonymous
``GET /oauth/authorize`` requests, each with a ~60 KB ``state`` (about the largest request
head the server takes), spread over 100 loopback source addresses where the system allows
it (Linux: 127.0.0.0/8), else from 127.0.0.1 only. Prints, per wave: consent pages served,
requests sent back with ``temporarily_unavailable``, the waiting table's size, this
process's RSS growth, and whether the user's consent can still be approved. Issue 12 §3:
the table stays bounded and the user's consent is never evicted.
"""

from __future__ import annotations

import argparse
import http.client
import re
import socket
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from scim_desktop.config import AuthConfig, OAuthConfig, ServerConfig
from scim_desktop.server.events import NullSink
from scim_desktop.server.runner import ServerThread

CLIENT_ID = "okta-scim-client"
SECRET = "s3cret-Value_0123456789"
REDIRECT = "https://system-admin.okta.com/admin/app/cpc/scimdesktop_1/oauth/callback"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def can_bind(address: str) -> bool:
    try:
        with socket.socket() as s:
            s.bind((address, 0))
        return True
    except OSError:
        return False


def authorize_path(state: str) -> str:
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "state": state,
    }
    return "/oauth/authorize?" + urlencode(query)


def wave(port: int, count: int, sources: list[str], pad: str) -> tuple[int, int, int]:
    consent = unavailable = other = 0
    per_source = max(1, count // len(sources))
    sent = 0
    for source in sources:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
        try:
            for _ in range(per_source):
                if sent == count:
                    break
                conn.request("GET", authorize_path(f"{sent}-{pad}"))
                resp = conn.getresponse()
                resp.read()
                sent += 1
                location = resp.headers.get("Location", "")
                if resp.status == 200:
                    consent += 1
                elif resp.status == 302 and "temporarily_unavailable" in location:
                    unavailable += 1
                else:
                    other += 1
        finally:
            conn.close()
    return consent, unavailable, other


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--waves", type=int, default=5)
    args = parser.parse_args()
    sources = [f"127.0.0.{n}" for n in range(2, 102)] if can_bind("127.0.0.2") else ["127.0.0.1"]
    pad = "x" * 60_000
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "scim.json"
        oauth = OAuthConfig(
            client_id=CLIENT_ID,
            client_secret=SECRET,
            redirect_uris=("https://system-admin.okta.com/admin/app/cpc/*/oauth/callback",),
            state_path=db.with_name("scim.oauth.json"),
        )
        config = ServerConfig(
            host="127.0.0.1", port=0, db_path=db, auth=AuthConfig("oauth", oauth=oauth)
        )
        server = ServerThread(config, NullSink())
        server.start()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request("GET", authorize_path("the-user"))
            page = conn.getresponse().read().decode()
            conn.close()
            request_id = re.search(r'name="request" value="([^"]*)"', page)
            csrf = re.search(r'name="csrf" value="([^"]*)"', page)
            assert request_id and csrf, page
            base = rss_mb()
            print(f"sources: {len(sources)} address(es); state of {len(pad):,} bytes per request")
            print(f"RSS before: {base:.1f} MB")
            for n in range(1, args.waves + 1):
                started = time.perf_counter()
                consent, unavailable, other = wave(server.port, args.requests, sources, pad)
                took = time.perf_counter() - started
                waiting = server.call(lambda: server.oauth.server.pending_count()).result(5)
                alive = server.call(
                    lambda: server.oauth.server.pending(request_id.group(1)) is not None
                ).result(5)
                print(
                    f"wave {n}: {args.requests} requests in {took:.2f} s; consent pages "
                    f"{consent}, temporarily_unavailable {unavailable}, other {other}; waiting "
                    f"{waiting}; RSS +{rss_mb() - base:.1f} MB; user's consent waiting: {alive}"
                )
            body = urlencode(
                {"request": request_id.group(1), "csrf": csrf.group(1), "decision": "approve"}
            )
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request(
                "POST",
                "/oauth/authorize",
                body=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            resp = conn.getresponse()
            resp.read()
            conn.close()
            code = parse_qs(urlsplit(resp.headers.get("Location", "")).query).get("code")
            print(f"user approves after the floods: {resp.status}, code issued: {bool(code)}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
