"""Request head parsing: our parse_head (server/http1.py) against httptools (llhttp, the parser
of uvicorn and Node), to judge whether replacing ours would pay (issue 12). Prints figures.

    python tests/benchmarks/bench_head_parse.py [--rounds N]

Both sides produce what the server needs from a head: method, target, version and the header
fields as a dict of normalized names, repeats joined with ",". Ours also finds the end of the
head (the regex _read_request uses); httptools is fed the same bytes through one parser, as a
connection would. Without httptools installed only our figures are printed. Then the
documented stricter cases of tests/server/test_http1_oracle.py are fed to httptools, to show
which checks a switch would still have to make itself.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scim_desktop.server.http1 import _HEAD_END
from scim_desktop.server.http1_head import HttpError, normalize_name, parse_head

HEADS: dict[str, bytes] = {
    # What Okta sends to create a user (the body is not part of the head).
    "okta POST /Users": (
        b"POST /scim/v2/Users HTTP/1.1\r\nHost: scim.example.com\r\n"
        b"Authorization: Bearer 0123456789abcdef0123456789abcdef\r\n"
        b"Content-Type: application/scim+json; charset=utf-8\r\nAccept: application/scim+json\r\n"
        b"User-Agent: Okta SCIM Client 1.0.0\r\nAccept-Encoding: gzip, deflate\r\n"
        b"Content-Length: 512\r\nConnection: Keep-Alive\r\n\r\n"
    ),
    "GET with a filter": (
        b"GET /scim/v2/Users?filter=userName%20eq%20%22bjensen%40example.com%22&startIndex=1"
        b"&count=100 HTTP/1.1\r\nHost: scim.example.com\r\nAuthorization: Bearer abc\r\n"
        b"Accept: application/scim+json\r\n\r\n"
    ),
    "40 fields": b"GET / HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-Field-%d: value number %d\r\n" % (i, i) for i in range(40))
    + b"\r\n",
}


def ours(data: bytes) -> tuple[str, str, str, dict[str, str]]:
    end = _HEAD_END.search(data)
    assert end is not None
    request = parse_head(data[: end.end()])
    assert request is not None
    return request.method, request.target, request.version, request.headers


def httptools_reader() -> Callable[[bytes], tuple[str, str, str, dict[str, str]]] | None:
    try:
        import httptools  # type: ignore[import-not-found]
    except ImportError:
        return None

    class Protocol:
        def __init__(self) -> None:
            self.url = b""
            self.headers: dict[str, str] = {}

        def on_url(self, url: bytes) -> None:
            self.url += url

        def on_header(self, name: bytes, value: bytes) -> None:
            key = normalize_name(name.decode("latin-1"))
            text = value.decode("latin-1")
            headers = self.headers
            headers[key] = f"{headers[key]},{text}" if key in headers else text

    proto = Protocol()
    parser = httptools.HttpRequestParser(proto)

    def read(data: bytes) -> tuple[str, str, str, dict[str, str]]:
        proto.url, proto.headers = b"", {}
        parser.feed_data(data)
        return (
            parser.get_method().decode(),
            proto.url.decode("latin-1"),
            "HTTP/" + parser.get_http_version(),
            proto.headers,
        )

    return read


def per_call_us(func: Callable[[bytes], object], data: bytes, rounds: int) -> float:
    """Median of five runs of ``rounds`` calls, in microseconds per call."""
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(rounds):
            func(data)
        runs.append((time.perf_counter() - t0) / rounds * 1e6)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20_000)
    args = parser.parse_args()
    llhttp = httptools_reader()
    print(f"{'head':<20} {'bytes':>6} {'ours us':>8} {'httptools us':>13}")
    for name, data in HEADS.items():
        if llhttp is not None:
            # GET heads only: the POST's body would stay in httptools' parser; cut it off.
            sample = data if not data.startswith(b"POST") else data.replace(b"512", b"0")
            assert ours(sample)[:3] == llhttp(sample)[:3] and ours(sample)[3] == llhttp(sample)[3]
        a = per_call_us(ours, data, args.rounds)
        b = "-" if llhttp is None else f"{per_call_us(llhttp, sample, args.rounds):.2f}"
        print(f"{name:<20} {len(data):>6} {a:>8.2f} {b:>13}")
    if llhttp is None:
        print("httptools is not installed: pip install httptools to compare")
        return
    import httptools

    from tests.server.test_http1_oracle import STRICTER

    print("\nThe documented stricter cases (test_http1_oracle.py) in httptools' default mode:")

    for quirk, rule in STRICTER.items():
        proto = type("P", (), {})()
        try:
            httptools.HttpRequestParser(proto).feed_data(rule.example)
            verdict = "accepts"
        except httptools.HttpParserError as exc:
            verdict = f"refuses ({type(exc).__name__})"
        try:
            parse_head(rule.example[: _HEAD_END.search(rule.example).end()])  # type: ignore[union-attr]
            ours_verdict = "head ok (refused in framing)"
        except HttpError as exc:
            ours_verdict = f"{exc.status}"
        print(f"  {quirk:<22} ours {ours_verdict:<30} httptools {verdict}")


if __name__ == "__main__":
    main()
