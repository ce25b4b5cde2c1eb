"""``scim-desktop coverage FILE...``: the lifecycle checklist (core/coverage.py) from recorded
sessions: the ``serve --log jsonl`` output and the window's exports (JSON Lines, the same
objects; HAR 1.2, server/../gui/export.py).

Each file is read into :class:`~scim_desktop.core.coverage.Exchange` records in file order. A
record that does not carry its Okta step (a HAR written by another tool, or a line without
``okta_step``) gets it from a fresh :class:`~scim_desktop.core.okta.OktaClassifier` fed the
whole file in order, which is what the server does live: the classifier needs the requests
before it (the existence check before a link, the read before an AIW deactivation).

No Qt, no server: only files, the pure core, and stdout. (:func:`exchange_of` also converts
the window's live records, with the same code.)
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from scim_desktop.core.catalog import TYPE_URNS
from scim_desktop.core.coverage import Coverage, Exchange, ItemState
from scim_desktop.core.coverage_report import report_html, report_json, report_markdown, summary
from scim_desktop.core.faults import relative_path
from scim_desktop.core.okta import OktaClassifier, OktaRequest
from scim_desktop.core.okta_expect_answers import json_or_none

if TYPE_CHECKING:
    from scim_desktop.server.events import RequestRecord

EXIT_OK = 0
EXIT_BAD_FILE = 2

#: The SCIM endpoints by which the base path of a recorded request is recognised
#: (RFC 7644 §3.2); entitlement endpoints (/Roles, ...) are relative to the same base.
_ENDPOINT = re.compile(r"^(.*?)/(Users|Groups|ResourceTypes|Schemas|ServiceProviderConfig)(/|$)")
_DEFAULT_BASE = "/scim/v2"
#: A HAR file is one JSON document, parsed whole (orjson has no streaming parser): ~4.5 times
#: its size at the peak (a 200 MB HAR took 970 MB). A bigger one is refused with a message
#: instead of risking the memory; a JSON Lines file is read a line at a time, whatever its size.
MAX_HAR_BYTES = 256 * 1024 * 1024
#: ...and one of more than this many JSON objects and arrays (a HAR of tiny entries costs far
#: more than its size: ~70 bytes each parsed; 4 million of them ~300 MB).
MAX_HAR_CONTAINERS = 4_000_000
#: The longest JSON Lines record read (the server records bodies of up to 256 KB each; a line
#: of tiny objects this long costs ~200 MB parsed, for the time of that line).
MAX_LINE_BYTES = 8 * 1024 * 1024


class CoverageFileError(Exception):
    """A file that cannot be read as a recorded session (the message names it)."""


@dataclass(frozen=True, slots=True)
class _Raw:
    """One recorded request, whichever format it came from."""

    exchange: Exchange
    request_headers: dict[str, str]
    response_headers: dict[str, str]
    duration_ms: float | None


def _header(headers: dict[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _str_dict(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _har_headers(value: Any) -> dict[str, str]:
    if not isinstance(value, list):
        return {}
    return {
        str(h["name"]): str(h.get("value", ""))
        for h in value
        if isinstance(h, dict) and "name" in h
    }


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _from_jsonl(obj: dict[str, Any], rid: str) -> _Raw:
    """A ``--log jsonl`` object (server/events.record_json)."""
    request = obj.get("request") if isinstance(obj.get("request"), dict) else {}
    response = obj.get("response") if isinstance(obj.get("response"), dict) else {}
    status = obj.get("status")
    ex = Exchange(
        id=rid,
        time=_text(obj.get("time")),
        method=_text(obj.get("method")).upper(),
        path=_text(obj.get("path")),
        query=_text(obj.get("query")),
        status=status if isinstance(status, int) else 0,
        request_body=_text(request.get("body")),
        response_body=_text(response.get("body")),
        okta_step=obj.get("okta_step") if isinstance(obj.get("okta_step"), str) else None,
        okta_label=obj.get("okta_label") if isinstance(obj.get("okta_label"), str) else None,
        okta_explanation=_text(obj.get("okta_explanation")) or None,
        retry_gives_up=obj.get("okta_retry_gives_up") is True,
    )
    return _Raw(
        ex,
        _str_dict(request.get("headers")),
        _str_dict(response.get("headers")),
        _number(obj.get("duration_ms")),
    )


def _from_har(entry: dict[str, Any], rid: str) -> _Raw:
    """A HAR 1.2 entry (gui/export.to_har; ``_okta*`` fields when SCIM Desktop wrote it)."""
    request = entry.get("request") if isinstance(entry.get("request"), dict) else {}
    response = entry.get("response") if isinstance(entry.get("response"), dict) else {}
    url = urlsplit(_text(request.get("url")))
    post = request.get("postData") if isinstance(request.get("postData"), dict) else {}
    content = response.get("content") if isinstance(response.get("content"), dict) else {}
    status = response.get("status")
    step = entry.get("_oktaStep")
    label = entry.get("_oktaLabel")
    ex = Exchange(
        id=rid,
        time=_text(entry.get("startedDateTime")),
        method=_text(request.get("method")).upper(),
        path=url.path,
        query=url.query,
        status=status if isinstance(status, int) and status > 0 else 0,
        request_body=_text(post.get("text")),
        response_body=_text(content.get("text")),
        okta_step=step if isinstance(step, str) and step else None,
        okta_label=label if isinstance(label, str) and label else None,
        okta_explanation=_text(entry.get("_oktaExplanation")) or None,
    )
    return _Raw(
        ex,
        _har_headers(request.get("headers")),
        _har_headers(response.get("headers")),
        _number(entry.get("time")),
    )


def exchange_of(record: RequestRecord) -> Exchange:
    """A live request record (the window's) as the checklist reads it: the same conversion as a
    ``--log jsonl`` line, whose object ``record_json`` builds from the record."""
    from scim_desktop.server.events import record_json  # only the window has records

    return _from_jsonl(record_json(record), str(record.id)).exchange


def read_session(path: Path) -> Iterator[Exchange]:
    """The requests recorded in one file, in order, each with its Okta step. A generator: a
    JSON Lines file is read a line at a time (twice when its records lack their steps: the
    classifier needs the session's base path and entitlement catalog first), so its size
    does not matter; a HAR file is one JSON document, read whole (at most MAX_HAR_BYTES).

    Raises :class:`CoverageFileError` when the file cannot be read or is neither format."""
    records = _source(path)
    if any(r.exchange.okta_step is None for r in records()):
        yield from (r.exchange for r in _classify(records))
    else:
        yield from (r.exchange for r in records())


#: Records of one file, read again at each call (a JSON Lines file from the disk).
_Records = Callable[[], Iterator[_Raw]]


def _source(path: Path) -> _Records:
    """How to read ``path``'s records, after a look at its start: a HAR document is parsed
    here (once), a JSON Lines file is streamed at each call."""
    first: Any = None
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            line = b""
            while not line.strip() and (line := f.readline(MAX_LINE_BYTES + 1)):
                line = line.removeprefix(_BOM)
            line = line.strip()
            record = _loads(line) if len(line) <= MAX_LINE_BYTES else None
            if line.startswith(b"{") and not (isinstance(record, dict) and "method" in record):
                # Not a recorded request: a HAR document (pretty-printed, or on one line)?
                if size > MAX_HAR_BYTES:
                    raise CoverageFileError(
                        f"{path}: not JSON Lines, and as one JSON document (a HAR file) it is "
                        f"over {MAX_HAR_BYTES // 2**20} MB, which is read whole; export the "
                        "session as JSON Lines (read a line at a time) or split it"
                    )
                f.seek(0)
                data = f.read().removeprefix(_BOM)
                # Parsed, every object and array costs 56-64 bytes or more whatever its text:
                # 60 MB of '{},' entries took 3.3 GB and 10 minutes. Counted first (a C
                # pass; brackets inside strings count too, which errs on the safe side).
                if data.count(b"{") + data.count(b"[") > MAX_HAR_CONTAINERS:
                    raise CoverageFileError(
                        f"{path}: a JSON document (a HAR file) of more than "
                        f"{MAX_HAR_CONTAINERS:,} objects and arrays, which is read whole; "
                        "export the session as JSON Lines (read a line at a time) or split it"
                    )
                first = _loads(data)
                del data  # the parsed document is enough from here
    except OSError as exc:
        raise CoverageFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if isinstance(first, dict) and isinstance(first.get("log"), dict):
        entries = first["log"].get("entries")
        if not isinstance(entries, list):
            raise CoverageFileError(f"{path}: a HAR file without log.entries")
        name = path.name

        def har() -> Iterator[_Raw]:
            for k, e in enumerate(entries, 1):
                if isinstance(e, dict):
                    yield _from_har(e, f"{name}#{k}")

        return har
    return lambda: _jsonl(path)


#: A UTF-8 byte order mark, which some editors and Windows tools put first.
_BOM = b"\xef\xbb\xbf"


def _loads(data: bytes) -> Any:
    """JSON, or None when it is not (orjson refuses nesting past 1024 levels too)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def _is_record(line: bytes) -> bool:
    """Not blank, nor the sink's "(N log lines dropped ...)" notice."""
    return bool(line) and not line.startswith(b"(")


def _lines(f: IO[bytes], path: Path) -> Iterator[tuple[int, bytes]]:
    """Numbered, stripped lines of at most MAX_LINE_BYTES each (a file without line breaks
    is not read whole)."""
    n = 0
    while line := f.readline(MAX_LINE_BYTES + 1):
        n += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            raise CoverageFileError(
                f"{path}: line {n} is over {MAX_LINE_BYTES // 2**20} MB; a recorded request is "
                "far smaller (expected a --log jsonl file, a JSON Lines export or a HAR file)"
            )
        yield n, (line.removeprefix(_BOM) if n == 1 else line).strip()


def _jsonl(path: Path) -> Iterator[_Raw]:
    name = path.name
    try:
        with path.open("rb") as f:
            for n, line in _lines(f, path):
                if not _is_record(line):
                    continue
                obj = _loads(line)
                if obj is None:
                    raise CoverageFileError(
                        f"{path}: line {n} is not JSON; expected a --log jsonl file, a JSON "
                        "Lines export or a HAR file"
                    )
                if not isinstance(obj, dict) or "method" not in obj or "path" not in obj:
                    raise CoverageFileError(f"{path}: line {n} is not a recorded request")
                yield _from_jsonl(obj, f"{name}#{n}")
    except OSError as exc:
        raise CoverageFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def _base_path(raws: Iterable[_Raw]) -> str:
    """The SCIM base path the session used, from the first request to a SCIM endpoint."""
    for raw in raws:
        match = _ENDPOINT.match(raw.exchange.path)
        if match:
            return match.group(1)
    return _DEFAULT_BASE


def _time(text: str, fallback: float) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return fallback


def _catalog(raws: Iterable[_Raw], base: str) -> dict[str, str]:
    """The entitlement catalog the server served, from its recorded ``GET /ResourceTypes``
    answer: endpoint -> type name for each type with an Okta Role / Entitlement schema (what
    the live server gives ``OktaClassifier.set_catalog``; without it the entitlement steps are
    not told apart)."""
    for raw in raws:
        ex = raw.exchange
        if ex.method != "GET" or ex.status != 200:
            continue
        if relative_path(ex.path, base).rstrip("/").lower() != "/resourcetypes":
            continue
        body = json_or_none(ex.response_body)
        resources = body.get("Resources") if isinstance(body, dict) else None
        if not isinstance(resources, list):
            continue
        return {
            str(rt["endpoint"]): str(rt.get("name") or rt.get("id") or rt["endpoint"])
            for rt in resources
            if isinstance(rt, dict) and rt.get("schema") in TYPE_URNS and rt.get("endpoint")
        }
    return {}


def _classify(records: _Records) -> Iterator[_Raw]:
    """Give every record without a step the one a fresh classifier finds, feeding it the whole
    file in order (classify, then note_response with the answer: as the server does)."""
    base = _base_path(records())
    okta = OktaClassifier()
    okta.set_catalog(_catalog(records(), base))
    last = 0.0
    for raw in records():
        ex = raw.exchange
        last = max(last, _time(ex.time, last))
        req = OktaRequest(
            method=ex.method,
            path=relative_path(ex.path, base),
            query=dict(parse_qsl(ex.query, keep_blank_values=True)),
            body=json_or_none(ex.request_body),
            user_agent=_header(raw.request_headers, "User-Agent") or "",
            time=last,
        )
        try:
            step = okta.classify(req)
            step = okta.note_response(
                req,
                step,
                ex.status,
                _header(raw.response_headers, "Retry-After"),
                json_or_none(ex.response_body),
                duration_s=raw.duration_ms / 1000 if raw.duration_ms is not None else None,
            )
        except Exception:  # a request the classifier cannot read stays unlabelled
            yield raw
            continue
        if ex.okta_step is None:
            ex = replace(
                ex,
                okta_step=step.id,
                okta_label=ex.okta_label or step.label,
                okta_explanation=ex.okta_explanation or step.explanation,
                retry_gives_up=ex.retry_gives_up or step.retry_gives_up,
            )
        yield replace(raw, exchange=ex)


def coverage_of(paths: Iterable[Path]) -> Coverage:
    """The checklist fed every file's requests, file after file."""
    cov = Coverage()
    for path in paths:
        for ex in read_session(path):
            cov.add(ex)
    return cov


def checklist_lines(states: list[ItemState]) -> list[str]:
    """One line per item: status, title, evidence count (and a failure's reason)."""
    width = max(len(s.item.title) for s in states)
    lines = []
    for s in states:
        line = f"{s.status.replace('_', ' '):<9} {s.item.title:<{width}}  {s.count:>4}"
        if s.reason:
            line += f"  {s.reason}"
        lines.append(line.rstrip())
    return lines


def run(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    """The ``coverage`` subcommand."""
    out = out or sys.stdout
    paths = [Path(f) for f in args.files]
    try:
        cov = coverage_of(paths)
    except CoverageFileError as exc:
        print(f"scim-desktop coverage: error: {exc}", file=sys.stderr)
        return EXIT_BAD_FILE
    states = cov.snapshot()
    out.write("\n".join([*checklist_lines(states), summary(states)]) + "\n")
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    try:
        if args.json:
            Path(args.json).write_bytes(
                orjson.dumps(report_json(states), option=orjson.OPT_INDENT_2) + b"\n"
            )
        if args.markdown:
            report = report_markdown(states, generated, tuple(str(p) for p in paths))
            Path(args.markdown).write_text(report, encoding="utf-8")
        if getattr(args, "html", None):
            page = report_html(states, generated, tuple(str(p) for p in paths))
            Path(args.html).write_text(page, encoding="utf-8")
    except OSError as exc:
        print(f"scim-desktop coverage: error: cannot write the report: {exc}", file=sys.stderr)
        return EXIT_BAD_FILE
    out.flush()
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """The ``coverage`` subparser (``sub``: the CLI's subparsers action)."""
    parser = sub.add_parser(
        "coverage",
        help="the Okta lifecycle checklist from recorded sessions",
        description="Read recorded sessions (serve --log jsonl output, the window's JSON Lines "
        "and HAR exports) and print which of Okta's lifecycle steps (its OIN test plan) the "
        "traffic covered, which failed and which were not seen.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="a recorded session")
    parser.add_argument("--json", metavar="OUT", help="also write the checklist as JSON to OUT")
    parser.add_argument(
        "--markdown", metavar="OUT", help="also write a Markdown report with the evidence to OUT"
    )
    parser.add_argument(
        "--html",
        metavar="OUT",
        help="also write the report as a self-contained HTML page (prints well) to OUT",
    )
