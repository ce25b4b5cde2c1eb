"""Comparison servers for bench_server.py, each run as its own process on loopback.

    python tests/benchmarks/_servers.py bare          # Tornado, one handler, fixed JSON body
    python tests/benchmarks/_servers.py scim2 --token T   # scim2-server under uvicorn

Each binds 127.0.0.1 on a free port, prints ``PORT <n>`` on stdout once it listens, and
serves until SIGTERM / SIGINT. Not part of the product: a benchmark fixture.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
from typing import Any

#: The bare handler's body: small fixed JSON, about what a tiny SCIM resource looks like.
BARE_BODY = (
    b'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],'
    b'"id":"2819c223-7f76-453a-919d-413861904646","userName":"bjensen@example.com",'
    b'"active":true}'
)


def _listen() -> socket.socket:
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only when the listening
    # socket says it is TCP (with proto 0 Nagle stays on and small answers wait ~40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _announce(sock: socket.socket) -> None:
    print(f"PORT {sock.getsockname()[1]}", flush=True)


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


# --- bare Tornado ------------------------------------------------------------------------------


async def serve_bare() -> None:
    """The ceiling of this stack: Tornado's HTTPServer + Application + one RequestHandler that
    answers every GET with the same small JSON body (no auth, no store, no logging)."""
    import tornado.httpserver
    import tornado.web

    class Fixed(tornado.web.RequestHandler):
        def get(self, *args: str) -> None:
            self.set_header("Content-Type", "application/scim+json; charset=utf-8")
            self.finish(BARE_BODY)

    app = tornado.web.Application([(r"/.*", Fixed)], log_function=lambda handler: None)
    server = tornado.httpserver.HTTPServer(app)
    sock = _listen()
    server.add_sockets([sock])
    _announce(sock)
    await _until_signalled()
    server.stop()


# --- scim2-server ------------------------------------------------------------------------------


def make_scim2_app(token: str) -> Any:
    """scim2-server's ASGI application over its in-memory storage, default User/Group
    schemas, with a static bearer token (like its own ``scim2-server --bearer-token``)."""
    from scim2_models import UnauthorizedException
    from scim2_server.applications.asgi import ASGIApplication
    from scim2_server.memory import AsyncInMemoryStorage
    from scim2_server.utils import load_default_provider

    class BearerASGI(ASGIApplication):
        def check_auth(self, request: Any) -> None:
            scheme, _, given = (request.header("Authorization") or "").partition(" ")
            if scheme.lower() != "bearer" or given != token:
                raise UnauthorizedException

    return BearerASGI(AsyncInMemoryStorage(), load_default_provider())


async def serve_scim2(token: str, http: str) -> None:
    """scim2-server under uvicorn: one process, one worker, the asyncio loop (as ours),
    HTTP/1.1 keep-alive, access log off (ours logs to /dev/null in the benchmark)."""
    import logging

    import uvicorn

    config = uvicorn.Config(
        make_scim2_app(token),
        http=http,
        loop="asyncio",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=120,
        backlog=1024,
    )
    server = uvicorn.Server(config)
    # scim2-server logs every client error at INFO; keep its logger quiet like uvicorn's.
    logging.getLogger("scim2_server").setLevel(logging.WARNING)
    sock = _listen()
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            serving.result()
            return
        await asyncio.sleep(0.01)
    _announce(sock)
    # uvicorn installs its own SIGINT/SIGTERM handlers; it exits when signalled.
    await serving


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="which", required=True)
    sub.add_parser("bare", help="bare Tornado handler with a fixed JSON body")
    scim2 = sub.add_parser("scim2", help="scim2-server (ASGI) under uvicorn")
    scim2.add_argument("--token", required=True)
    scim2.add_argument("--http", default="auto", choices=("auto", "h11", "httptools"))
    args = parser.parse_args(argv)
    if args.which == "bare":
        asyncio.run(serve_bare())
    else:
        asyncio.run(serve_scim2(args.token, args.http))
    return 0


if __name__ == "__main__":
    sys.exit(main())
