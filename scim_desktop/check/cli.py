"""``scim-desktop check URL``: the command line of the checker (issue 15's contract).

Prints one line per check as it finishes (a failure adds what the server answered, what Okta
does with it and the fix), the cleanup, the time taken and ``check: P passed, F failed, S
skipped``. Exit status 0 when nothing failed, 1 when something did, 2 for a usage error or a
server that never answered, 130 after Ctrl-C (what was created is removed first).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from scim_desktop.check.model import SUITES

if TYPE_CHECKING:
    from scim_desktop.check.model import Check
    from scim_desktop.check.runner import CheckOptions

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def add_parser(sub: Any) -> None:
    """The ``check`` subparser (``sub``: the CLI's subparsers action)."""
    parser = sub.add_parser(
        "check",
        help="run Okta's SCIM tests against a SCIM server and say how to fix each failure",
        description="Send Okta's requests (its SPEC test suite, the user lifecycle, group push, "
        "entitlement discovery) to a SCIM server and report, for each answer Okta would not "
        "accept, what Okta does with it and how to fix the server. Creates only resources "
        "named scim-desktop-check-... and deletes them at the end (unless --keep).",
    )
    parser.add_argument("url", metavar="URL", help="the SCIM base URL, e.g. https://app/scim/v2")
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--token", metavar="TOKEN", help="send Authorization: Bearer TOKEN")
    auth.add_argument("--basic", metavar="USER:PASS", help="send HTTP Basic credentials")
    auth.add_argument(
        "--header",
        metavar='"Name: value"',
        action="append",
        help="send this header with every request (Okta's HTTP Header auth); repeatable",
    )
    parser.add_argument(
        "--suite",
        default=",".join(SUITES),
        metavar="LIST",
        help=f"comma-separated suites to run (default: {','.join(SUITES)})",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    parser.add_argument("--junit", metavar="FILE", help="also write JUnit XML (for CI)")
    parser.add_argument("--html", metavar="FILE", help="also write an HTML report")
    parser.add_argument(
        "--insecure", action="store_true", help="do not verify the server's TLS certificate"
    )
    parser.add_argument("--keep", action="store_true", help="keep the resources the checks created")


def options_from(args: argparse.Namespace, parser: argparse.ArgumentParser) -> CheckOptions:
    """CheckOptions from the command line (``runner.make_options``, the window's validation
    too); a usage error exits 2 (``parser.error``)."""
    from scim_desktop.check.runner import OptionsError, make_options

    try:
        return make_options(
            args.url,
            token=args.token,
            basic=args.basic,
            header=args.header or (),
            suites=args.suite,
            insecure=args.insecure,
            keep=args.keep,
        )
    except OptionsError as exc:
        parser.error(str(exc))


def run(
    args: argparse.Namespace, parser: argparse.ArgumentParser, out: IO[str] | None = None
) -> int:
    """The ``check`` subcommand."""
    # Imported here: building the command line's parser must stay cheap for every subcommand.
    from scim_desktop.check.report import check_lines, text_lines, to_html, to_json_bytes, to_junit
    from scim_desktop.check.runner import Runner, Unreachable

    out = out or sys.stdout
    options = options_from(args, parser)

    def on_check(check: Check) -> None:
        try:
            out.write("\n".join(check_lines(check)) + "\n")
            out.flush()
        except BrokenPipeError:  # "| head": the run goes on (and cleans up) unheard
            pass

    runner = Runner(options, on_check=on_check)
    interrupted = False
    try:
        report = runner.run()
    except Unreachable as exc:
        print(f"scim-desktop check: error: {runner.scrub(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        interrupted = True
        report = runner.report
    lines = list(text_lines(report))
    # The checks were printed as they finished; the rest of the text report follows.
    with contextlib.suppress(BrokenPipeError):
        out.write("\n".join(lines[sum(len(check_lines(c)) for c in report.checks) :]) + "\n")
        out.flush()
    try:
        if args.json:
            Path(args.json).write_bytes(to_json_bytes(report))
        if args.junit:
            Path(args.junit).write_bytes(to_junit(report))
        if args.html:
            Path(args.html).write_text(to_html(report), encoding="utf-8")
    except OSError as exc:
        print(f"scim-desktop check: error: cannot write the report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if report.failed else EXIT_OK
