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
from scim_desktop.config import ConfigError, ServerConfig, token_path_for
from scim_desktop.options import (
    add_connect_options,
    add_server_options,
    add_upstream_options,
    make_config,
)

EXIT_OK = 0
EXIT_START_FAILED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scim-desktop",
        description="A mock SCIM 2.0 server for demoing and exploring Okta provisioning.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check this installation (server, HTTP, window offscreen) and exit 0 if it works",
    )
    sub = parser.add_subparsers(dest="command", metavar="{gui,serve,proxy,coverage,check}")
    serve = sub.add_parser(
        "serve", help="run the SCIM server without a window", description="Run headless."
    )
    add_server_options(serve)
    add_connect_options(serve)
    serve.add_argument(
        "--log",
        choices=("text", "jsonl"),
        default="text",
        help="one line per request as text (default) or as JSON (stdout then carries only "
        "the JSON lines)",
    )
    proxy = sub.add_parser(
        "proxy",
        help="forward SCIM requests to your own SCIM server and log, label and break them",
        description="Run headless between Okta and your own SCIM server: /scim/v2/<rest> is "
        "forwarded to --upstream URL/<rest>; every request is logged with its Okta step, and "
        "--fault rules answer in the proxy before anything is forwarded.",
    )
    add_upstream_options(proxy, required=True)
    add_server_options(proxy)
    add_connect_options(proxy)
    proxy.add_argument(
        "--log",
        choices=("text", "jsonl"),
        default="text",
        help="one line per request as text (default) or as JSON (stdout then carries only "
        "the JSON lines)",
    )
    gui = sub.add_parser("gui", help="open the desktop window (the default)")
    add_server_options(gui)
    add_upstream_options(gui)
    gui.add_argument(
        "--screenshot",
        metavar="PATH",
        help="save a PNG of the whole window to PATH and exit",
    )
    gui.add_argument(
        "--screenshot-tab",
        choices=("requests", "users", "groups", "governance", "coverage", "faults", "connect"),
        default="requests",
        help="with --screenshot: which tab to show",
    )
    gui.add_argument(
        "--demo",
        action="store_true",
        help="with --screenshot: use a throwaway server with demo data and Okta traffic",
    )
    # Reads recorded sessions only: no server, no Qt (coverage_files imports core alone).
    from scim_desktop.coverage_files import add_parser as add_coverage_parser

    add_coverage_parser(sub)
    # Sends Okta's requests to a SCIM server: plain http.client, no Qt, no Tornado.
    from scim_desktop.check.cli import add_parser as add_check_parser

    add_check_parser(sub)
    return parser


def _token_file_in_use(config: ServerConfig) -> Path | None:
    """The token file beside the database, when it holds the token this server uses.

    With --token the file may not exist (nothing is written) or hold another, older token:
    naming it then would send the user to the wrong secret.
    """
    if config.auth.mode != "bearer" or not config.auth.token:
        return None
    path = token_path_for(config.db_path)
    try:
        kept = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return path if kept == config.auth.token else None


def _served_catalog(server: Any) -> Any:
    """The entitlement catalog the server serves (None: none, or no server)."""
    if server is None or not hasattr(server, "catalog"):
        return None
    try:
        return server.catalog().result(5)
    except Exception:  # the banner must never fail over it
        return None


def _proxy_warnings(config: ServerConfig) -> list[str]:
    """What the banner must say about a proxy's risky settings."""
    upstream = config.upstream
    if upstream is None:
        return []
    out = []
    if upstream.insecure and upstream.https:
        out.append(
            "--insecure-upstream: the upstream's https certificate is NOT verified; anyone on "
            "the path to it can read and change the traffic. Use it with test servers only."
        )
    elif upstream.insecure:
        out.append("--insecure-upstream has no effect: the upstream is plain http")
    if upstream.has_credential and config.auth.mode == "none":
        out.append(
            "--no-auth with an upstream credential: anyone who can reach this proxy acts on "
            "your server with that credential"
        )
    return out


def _banner(
    config: ServerConfig,
    base_url: str,
    warnings: list[str],
    out: IO[str],
    server: Any = None,
) -> None:
    upstream = config.upstream
    if upstream is not None:
        lines = [f"SCIM Desktop {__version__}: proxy mode, forwarding to your SCIM server"]
    else:
        lines = [f"SCIM Desktop {__version__}: SCIM 2.0 server listening"]
    public = server.public_base_url if server is not None else None
    if public:
        status = server.tunnel_status()
        lines.append(f"  Base URL:  {public}   (public, paste it into Okta)")
        lines.append(f"  Local URL: {server.base_url}")
        lines.append(f"  Tunnel:    {status.provider} (pid {status.pid}); it stops with the server")
    else:
        lines.append(f"  Base URL:  {base_url}")
    if upstream is not None:
        lines.append(
            f"  Upstream:  {upstream.url}   (/scim/v2/<rest> goes to {upstream.url}/<rest>)"
        )
        lines.append(f"  Upstream auth: {upstream.describe_credential()}")
    if upstream is not None and not upstream.has_credential:
        lines.append("  Auth:      none of its own: your server checks the client's credential")
    else:
        lines.append(f"  Auth:      {config.auth.describe()}")
    token_file = _token_file_in_use(config)
    if token_file is not None:
        lines.append(f"  Token file: {token_file}")
    oauth = config.auth.oauth if config.auth.mode == "oauth" else None
    if oauth is not None and server is not None:
        lines += [
            f"  OAuth client ID:     {oauth.client_id}",
            f"  OAuth client secret: {oauth.client_secret}",
            f"  Authorize URL:       {server.oauth_authorize_url}",
            f"  Token URL:           {server.oauth_token_url}",
            f"  Access tokens last:  {oauth.token_ttl} s (refresh tokens rotate)",
            f"  Redirect URIs:       {', '.join(oauth.redirect_uris[:2])}"
            + (f" (+{len(oauth.redirect_uris) - 2} more)" if len(oauth.redirect_uris) > 2 else ""),
            f"  OAuth file: {oauth.state_path}",
        ]
    if config.tls is not None and server is not None:
        made = " (generated now)" if server.tls_generated else ""
        kind = "self-signed certificate" if config.tls.self_signed else "certificate"
        lines.append(f"  TLS:       {kind} {config.tls.cert_path}{made}")
        lines.append(f"  TLS SHA-256: {server.tls_fingerprint}")
    lines.append(f"  Database:  {config.db_path}")
    catalog = _served_catalog(server) if upstream is None else None
    if catalog is not None:
        # What Okta's entitlement discovery will find (--catalog FILE, or the stored one).
        where = "loaded from --catalog" if config.catalog is not None else "kept in the data file"
        types = ", ".join(f"{rt.endpoint} ({len(rt.resources)})" for rt in catalog.resource_types)
        lines.append(f"  Catalog:   {types or 'no resource types'}; {where}")
    for rule in config.faults:
        lines.append(f"  FAULT:     {rule.describe()}")
    lines += [f"  WARNING: {w}" for w in [*_proxy_warnings(config), *warnings]]
    if not public:
        # The step a new user needs next: Okta's provisioning runs in Okta's cloud, so it cannot
        # reach 127.0.0.1 (nor most LAN addresses); a tunnel gives it a public https URL.
        lines += [
            "  Next step: Okta calls SCIM servers from its cloud over https, so give this one a",
            "             public URL: add --tunnel cloudflared (or ngrok, localhost.run); see",
            '             "Connect a real Okta tenant" in the README.',
        ]
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

    # SIGHUP too (the terminal closed): the tunnel tool must stop with the server.
    stop_signals = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGHUP"):
        stop_signals.append(signal.SIGHUP)
    previous = {s: signal.signal(s, on_signal) for s in stop_signals}
    tunnel_state = {"up": False}

    def on_tunnel(status: Any) -> None:
        # Runs on the server thread. Only a tunnel that was up and then ended is news here;
        # a tunnel that fails to start is reported by start().
        if status.state == "up":
            tunnel_state["up"] = True
        elif status.state == "failed" and tunnel_state["up"]:
            tunnel_state["up"] = False
            print(
                f"scim-desktop: warning: the tunnel ended ({status.error}); the server keeps "
                f"serving locally at {server.base_url}",
                file=sys.stderr,
                flush=True,
            )

    server.add_tunnel_listener(on_tunnel)
    try:
        try:
            server.start()
        except (ServerStartError, ConfigError) as exc:
            print(f"scim-desktop: error: {exc}", file=sys.stderr)
            return EXIT_START_FAILED
        banner_out = sys.stderr if args.log == "jsonl" else sys.stdout
        _banner(config, server.base_url, server.warnings, banner_out, server)
        while not stop.wait(0.5):
            if not server.running:
                print("scim-desktop: error: the server stopped unexpectedly", file=sys.stderr)
                return EXIT_START_FAILED
        server.stop()
        print("scim-desktop: stopped; data saved.", file=sys.stderr)
        return EXIT_OK
    finally:
        sink.close()  # the last lines of the request log
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
        from scim_desktop.gui.app import platform_problem, run_gui

        problem = platform_problem()
    except ImportError as exc:
        problem = f"Qt cannot load: {exc}"
    if problem is not None:
        if args.screenshot:
            # A picture of the window cannot come from the headless server.
            print(f"scim-desktop: error: {problem}", file=sys.stderr)
            return EXIT_START_FAILED
        print(
            f"scim-desktop: the desktop window cannot start ({problem}). Starting the "
            "headless server instead (scim-desktop serve).",
            file=sys.stderr,
        )
        args.log = "text"
        return serve(args)
    return int(run_gui(args))


_TOP_LEVEL = {
    "serve",
    "proxy",
    "gui",
    "coverage",
    "check",
    "-h",
    "--help",
    "--version",
    "--self-test",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = list(argv if argv is not None else sys.argv[1:])
    if words and words[0] not in _TOP_LEVEL and words[0].startswith("-"):
        # "scim-desktop --port 9000" means the window with those options.
        words = ["gui", *words]
    args = parser.parse_args(words)
    if args.self_test:
        from scim_desktop.selftest import main as self_test

        return self_test()
    if args.command is None:
        # No subcommand: the window, with default settings.
        args = parser.parse_args(["gui", *words])
    if args.command == "serve":
        return serve(args)
    if args.command == "proxy":
        if args.catalog is not None:
            # The entitlement catalog is the mock server's; in proxy mode the upstream serves.
            _subcommand(parser, "proxy").error("--catalog is for the mock server (serve, gui)")
        return serve(args)
    if args.command == "coverage":
        from scim_desktop.coverage_files import run as coverage

        return coverage(args)
    if args.command == "check":
        from scim_desktop.check.cli import run as check

        return check(args, _subcommand(parser, "check"))
    if args.demo and not args.screenshot:
        # --demo swaps in a throwaway server for a picture; without --screenshot it would
        # open a window that quietly is not the user's server.
        _subcommand(parser, "gui").error("--demo is only for --screenshot PATH")
    return gui(args)


def _subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of one subcommand, for a usage error in its own words (exit status 2)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise KeyError(name)


if __name__ == "__main__":
    sys.exit(main())
