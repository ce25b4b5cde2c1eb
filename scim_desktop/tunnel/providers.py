"""Tunnel tools: the command line for each, and pure parsing of what they print.

A tunnel tool runs as a child process pointed at the local port and prints the public https
URL it was given. Nothing here starts processes (see :mod:`scim_desktop.tunnel.process`), so
the parsers are tested with the exact lines the real tools print.

- cloudflared quick tunnels (no account): ``cloudflared tunnel --url http://127.0.0.1:PORT
  --no-autoupdate`` logs, on stderr, a box containing ``https://<words>.trycloudflare.com``.
- ngrok (the user's own authtoken from ``ngrok config add-authtoken``): ``ngrok http
  127.0.0.1:PORT --log stdout --log-format json`` logs one JSON object per line; the one with
  ``"msg": "started tunnel"`` carries the public ``url``.
- localhost.run (only an ssh client): ``ssh ... -R 80:127.0.0.1:PORT nokey@localhost.run --
  --output json`` prints ``{"event": "tcpip-forward", "address": "<id>.lhr.life", ...}``; in
  its text mode it prints ``<id>.lhr.life tunneled with tls termination, https://<id>.lhr.life``.
  Both are understood.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

#: ANSI colour and cursor sequences some tools print even into a pipe.
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")
_HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+")


def strip_ansi(line: str) -> str:
    return _ANSI_RE.sub("", line)


def public_origin(url: str) -> str | None:
    """``https://host`` from a URL a tool printed, or None if it is not a plain https host."""
    match = re.fullmatch(r"https://([^/\s:?#]+)(?::443)?/?", url.strip())
    if not match or not _HOST_RE.fullmatch(match.group(1)):
        return None
    return f"https://{match.group(1).lower()}"


def one_line(lines: Sequence[str], limit: int = 600) -> str:
    """The last output lines joined into one line for an error message."""
    text = " | ".join(line.strip() for line in lines if line.strip())
    if len(text) > limit:
        text = "…" + text[-limit:]
    return text or "(no output)"


@dataclass(frozen=True, slots=True)
class Provider:
    """One tunnel tool. Subclasses say how to run it and how to read it."""

    name: str
    #: The executable looked for on PATH.
    executable: str
    #: Shown to people: "cloudflared quick tunnel", ...
    title: str
    #: Where to get the tool; SCIM Desktop never downloads it.
    install_hint: str

    def command(
        self, tool: str, port: int, scheme: str = "http", host: str = "127.0.0.1"
    ) -> list[str]:
        """The command line that tunnels to ``scheme://host:port`` (``host``: the address the
        server listens on; IPv6 in brackets)."""
        raise NotImplementedError

    def parse_line(self, line: str) -> str | None:
        """The public ``https://host`` if this output line announces it."""
        raise NotImplementedError

    def explain(self, lines: Sequence[str]) -> str | None:
        """A plain-language cause for a failure, from the tool's last output lines."""
        return None

    def missing_message(self) -> str:
        return (
            f"{self.executable} was not found on PATH: the {self.title} needs it. "
            f"{self.install_hint} Or pass its location with --tunnel-path. "
            "(SCIM Desktop never downloads tunnel tools.)"
        )


class _Cloudflared(Provider):
    _URL_RE = re.compile(r"https://([a-z0-9-]+)\.trycloudflare\.com\b", re.IGNORECASE)

    def command(
        self, tool: str, port: int, scheme: str = "http", host: str = "127.0.0.1"
    ) -> list[str]:
        cmd = [tool, "tunnel", "--url", f"{scheme}://{host}:{port}", "--no-autoupdate"]
        if scheme == "https":
            # The local certificate is self-signed; cloudflare's edge serves its own.
            cmd.append("--no-tls-verify")
        return cmd

    def parse_line(self, line: str) -> str | None:
        for match in self._URL_RE.finditer(strip_ansi(line)):
            # "failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel"" is
            # the API, not a tunnel.
            if match.group(1).lower() != "api":
                return f"https://{match.group(1).lower()}.trycloudflare.com"
        return None

    def explain(self, lines: Sequence[str]) -> str | None:
        text = "\n".join(lines).lower()
        if "429 too many requests" in text or "error code: 1015" in text:
            return "trycloudflare.com is rate-limiting quick tunnels; wait a minute and retry."
        if "failed to request quick tunnel" in text or "no such host" in text:
            return (
                "cloudflared could not reach trycloudflare.com (no internet connection, or a "
                "firewall or proxy blocks it)."
            )
        if "config" in text and "quick tunnel" in text and "not supported" in text:
            return "quick tunnels do not run while ~/.cloudflared/config.yml exists; move it away."
        return None


class _Ngrok(Provider):
    def command(
        self, tool: str, port: int, scheme: str = "http", host: str = "127.0.0.1"
    ) -> list[str]:
        target = f"https://{host}:{port}" if scheme == "https" else f"{host}:{port}"
        return [tool, "http", target, "--log", "stdout", "--log-format", "json"]

    def parse_line(self, line: str) -> str | None:
        event = _json_object(line)
        if event is not None:
            url = event.get("url")
            if event.get("msg") == "started tunnel" and isinstance(url, str):
                return public_origin(url)
            return None
        # logfmt, if a config file overrides the format: ... msg="started tunnel" ... url=https://x
        text = strip_ansi(line)
        if 'msg="started tunnel"' in text:
            match = re.search(r"\burl=(https://\S+)", text)
            if match:
                return public_origin(match.group(1))
        return None

    def explain(self, lines: Sequence[str]) -> str | None:
        text = "\n".join(lines)
        if "ERR_NGROK_4018" in text or "authtoken" in text.lower():
            return (
                "ngrok needs your authtoken: sign up at https://dashboard.ngrok.com, then run "
                "`ngrok config add-authtoken <token>` once."
            )
        if "ERR_NGROK_108" in text:
            return "ngrok is already running elsewhere with this account (one session at a time)."
        for line in reversed(lines):
            event = _json_object(line)
            if event and event.get("lvl") in ("eror", "crit", "error") and event.get("err"):
                first = str(event["err"]).strip().splitlines()[0]
                return f"ngrok reported: {first}"
        return None


class _LocalhostRun(Provider):
    _TEXT_RE = re.compile(r"tunneled with tls termination,\s*(https://\S+)", re.IGNORECASE)
    _HOST_BEFORE_RE = re.compile(r"(\S+)\s+tunneled with tls termination", re.IGNORECASE)

    def command(
        self, tool: str, port: int, scheme: str = "http", host: str = "127.0.0.1"
    ) -> list[str]:
        if scheme != "http":
            raise ValueError(
                "localhost.run forwards plain http to this computer; run the server without "
                "--tls (the tunnel gives Okta https already)"
            )
        return [
            tool,
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            "ServerAliveInterval=30",
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            f"80:{host}:{port}",
            "nokey@localhost.run",
            "--",
            "--output",
            "json",
        ]

    def parse_line(self, line: str) -> str | None:
        event = _json_object(line)
        if event is not None:
            address = event.get("address")
            if event.get("event") == "tcpip-forward" and isinstance(address, str):
                address = address.strip()
                if not address.startswith("https://"):
                    address = "https://" + address.removeprefix("http://")
                return public_origin(address)
            return None
        text = strip_ansi(line)
        match = self._TEXT_RE.search(text)
        if match:
            return public_origin(match.group(1).rstrip(".,"))
        match = self._HOST_BEFORE_RE.search(text)
        if match:
            return public_origin("https://" + match.group(1))
        return None

    def explain(self, lines: Sequence[str]) -> str | None:
        text = "\n".join(lines).lower()
        if "permission denied" in text:
            return "localhost.run refused the ssh login (try again; nokey@ needs no key)."
        if "remote port forwarding failed" in text:
            return "localhost.run refused the port forwarding; try again in a moment."
        if any(
            s in text
            for s in ("could not resolve", "connection refused", "timed out", "network is")
        ):
            return (
                "ssh could not reach localhost.run on port 22 (no internet connection, or a "
                "firewall blocks outgoing ssh)."
            )
        if "host key verification failed" in text:
            return "ssh rejected localhost.run's host key; check ~/.ssh/known_hosts."
        return None


def _json_object(line: str) -> dict | None:
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


PROVIDERS: dict[str, Provider] = {
    "cloudflared": _Cloudflared(
        name="cloudflared",
        executable="cloudflared",
        title="cloudflared quick tunnel",
        install_hint=(
            "Install cloudflared from https://developers.cloudflare.com/cloudflare-one/"
            "connections/connect-networks/downloads/ (macOS: brew install cloudflared; "
            "Windows: winget install --id Cloudflare.cloudflared)."
        ),
    ),
    "ngrok": _Ngrok(
        name="ngrok",
        executable="ngrok",
        title="ngrok tunnel",
        install_hint=(
            "Install ngrok from https://ngrok.com/download and run "
            "`ngrok config add-authtoken <token>` once."
        ),
    ),
    "localhost.run": _LocalhostRun(
        name="localhost.run",
        executable="ssh",
        title="localhost.run tunnel (ssh -R)",
        install_hint=(
            "Install an OpenSSH client (Debian/Ubuntu: apt install openssh-client; Windows: "
            "Settings > Optional features > OpenSSH Client; macOS has it)."
        ),
    ),
}


def get_provider(name: str) -> Provider:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ValueError(f"unknown tunnel provider {name!r} (use {', '.join(PROVIDERS)})") from None
