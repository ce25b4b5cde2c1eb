"""Command line: ``scim-desktop [gui]`` opens the window, ``scim-desktop serve`` runs headless.

The GUI is imported lazily, so ``serve`` never loads Qt.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any

from scim_desktop import __version__
from scim_desktop.config import (
    DEFAULT_HOST,
    DEFAULT_MAX_BODY,
    DEFAULT_PORT,
    AuthConfig,
    ConfigError,
    ServerConfig,
    default_db_path,
    load_or_create_token,
    token_path_for,
)
from scim_desktop.core.faults import (
    PRESETS,
    FaultRule,
    FaultSpecError,
    get_preset,
    parse_fault_spec,
)

EXIT_OK = 0
EXIT_START_FAILED = 1
EXIT_USAGE = 2


class _OrderedAppend(argparse.Action):
    """Collects --fault and --fault-preset in command-line order: rules fire first-match."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        items = list(getattr(namespace, self.dest, None) or [])
        items.append((option_string, values))
        setattr(namespace, self.dest, items)


def fault_rules(items: list[tuple[str, str]]) -> tuple[FaultRule, ...]:
    """Rules from --fault / --fault-preset values; FaultSpecError names what is wrong."""
    rules: list[FaultRule] = []
    for option, value in items:
        if option == "--fault-preset":
            rules.extend(get_preset(value).rules)
        else:
            rules.append(parse_fault_spec(value))
    return tuple(rules)


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help=f"address to listen on ({DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, default=None, help=f"port to listen on ({DEFAULT_PORT}; 0: any free)"
    )
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help=f"TinyDB data file (default: {default_db_path()})",
    )
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument(
        "--token", help="bearer token clients must send (default: generated and kept)"
    )
    auth.add_argument("--basic", metavar="USER:PASS", help="use HTTP Basic authentication")
    auth.add_argument("--no-auth", action="store_true", help="accept requests without credentials")
    parser.add_argument(
        "--fault",
        dest="fault_items",
        action=_OrderedAppend,
        default=[],
        metavar="SPEC",
        help="inject a fault, e.g. status=429,retry_after=30,method=POST,path=/Users,count=2 "
        "(repeatable; keys: status, retry_after, method, path, step, probability, count, "
        "latency_ms, action, rate, burst, per_client, name)",
    )
    parser.add_argument(
        "--fault-preset",
        dest="fault_items",
        action=_OrderedAppend,
        metavar="NAME",
        help=f"inject a named fault preset (repeatable): {', '.join(PRESETS)}",
    )
    parser.add_argument(
        "--fault-seed",
        type=int,
        default=None,
        metavar="N",
        help="seed for probabilistic faults, so runs repeat",
    )
    parser.add_argument(
        "--max-body",
        type=int,
        default=DEFAULT_MAX_BODY,
        metavar="BYTES",
        help=f"largest request body accepted (default {DEFAULT_MAX_BODY}); larger is 413",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scim-desktop",
        description="A mock SCIM 2.0 server for demoing and exploring Okta provisioning.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{gui,serve}")
    serve = sub.add_parser(
        "serve", help="run the SCIM server without a window", description="Run headless."
    )
    _add_server_options(serve)
    serve.add_argument(
        "--log",
        choices=("text", "jsonl"),
        default="text",
        help="one line per request as text (default) or as JSON (stdout then carries only "
        "the JSON lines)",
    )
    gui = sub.add_parser("gui", help="open the desktop window (the default)")
    _add_server_options(gui)
    gui.add_argument(
        "--screenshot",
        metavar="PATH",
        help="save a PNG of the whole window to PATH and exit",
    )
    gui.add_argument(
        "--demo",
        action="store_true",
        help="with --screenshot: use a throwaway server with demo data and Okta traffic",
    )
    return parser


def make_config(args: argparse.Namespace) -> ServerConfig:
    """Settings from parsed options; generates (or reuses) the bearer token by default."""
    try:
        faults = fault_rules(args.fault_items)
    except FaultSpecError as exc:
        raise ConfigError(str(exc)) from None
    db_path = (args.db or default_db_path()).expanduser().resolve()
    if args.no_auth:
        auth = AuthConfig("none")
    elif args.basic is not None:
        auth = AuthConfig.parse_basic(args.basic)
    elif args.token is not None:
        auth = AuthConfig("bearer", token=args.token)
    else:
        try:
            auth = AuthConfig("bearer", token=load_or_create_token(token_path_for(db_path)))
        except OSError as exc:
            raise ConfigError(f"cannot keep the token beside {db_path}: {exc.strerror}") from None
    return ServerConfig(
        faults=faults,
        fault_seed=args.fault_seed,
        host=args.host or DEFAULT_HOST,
        port=DEFAULT_PORT if args.port is None else args.port,
        db_path=db_path,
        auth=auth,
        max_body_bytes=args.max_body,
    )


def _banner(config: ServerConfig, base_url: str, warnings: list[str], out: IO[str]) -> None:
    lines = [
        f"SCIM Desktop {__version__}: SCIM 2.0 server listening",
        f"  Base URL:  {base_url}",
        f"  Auth:      {config.auth.describe()}",
    ]
    if config.auth.mode == "bearer":
        lines.append(f"  Token file: {token_path_for(config.db_path)}")
    lines.append(f"  Database:  {config.db_path}")
    for rule in config.faults:
        lines.append(f"  FAULT:     {rule.describe()}")
    lines += [f"  WARNING: {w}" for w in warnings]
    lines.append("  Stop with Ctrl+C.")
    out.write("\n".join(lines) + "\n")
    out.flush()


def serve(args: argparse.Namespace) -> int:
    from scim_desktop.server.log_sinks import JsonLinesSink, TextSink
    from scim_desktop.server.runner import ServerStartError, ServerThread

    # Diagnostics go to stderr; with --log jsonl stdout carries only the JSON lines.
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        config = make_config(args)
    except ConfigError as exc:
        print(f"scim-desktop: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    sink = JsonLinesSink(sys.stdout) if args.log == "jsonl" else TextSink(sys.stdout)
    server = ServerThread(config, sink)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server.start()
        except (ServerStartError, ConfigError) as exc:
            print(f"scim-desktop: error: {exc}", file=sys.stderr)
            return EXIT_START_FAILED
        banner_out = sys.stderr if args.log == "jsonl" else sys.stdout
        _banner(config, server.base_url, server.warnings, banner_out)
        while not stop.wait(0.5):
            if not server.running:
                print("scim-desktop: error: the server stopped unexpectedly", file=sys.stderr)
                return EXIT_START_FAILED
        server.stop()
        print("scim-desktop: stopped; data saved.", file=sys.stderr)
        return EXIT_OK
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def gui(args: argparse.Namespace) -> int:
    if args.screenshot and not _has_display():
        # A screenshot needs no screen: Qt renders offscreen.
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    if not _has_display():
        print(
            "scim-desktop: no display was found; starting the headless server instead "
            "(scim-desktop serve).",
            file=sys.stderr,
        )
        args.log = "text"
        return serve(args)
    try:
        from scim_desktop.gui.app import run_gui
    except ImportError as exc:
        print(
            f"scim-desktop: the desktop window cannot start ({exc}); starting the headless "
            "server instead (scim-desktop serve).",
            file=sys.stderr,
        )
        args.log = "text"
        return serve(args)
    return int(run_gui(args))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        # No subcommand: the window, with default settings.
        args = parser.parse_args(["gui", *(argv if argv is not None else sys.argv[1:])])
    if args.command == "serve":
        return serve(args)
    return gui(args)


if __name__ == "__main__":
    sys.exit(main())
