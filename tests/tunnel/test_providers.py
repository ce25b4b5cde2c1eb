"""Parsing each tunnel tool's real output for its public URL (pure, no processes)."""

from __future__ import annotations

import pytest

from scim_desktop.tunnel.providers import PROVIDERS, get_provider, public_origin, strip_ansi
from tests.tunnel.stand_ins import (
    CLOUDFLARED_HOST,
    CLOUDFLARED_NO_INTERNET,
    CLOUDFLARED_OUTPUT,
    LHR_HOST,
    LOCALHOST_RUN_JSON,
    LOCALHOST_RUN_TEXT,
    NGROK_HOST,
    NGROK_NO_AUTHTOKEN,
    NGROK_OUTPUT,
)


def first_url(provider: str, output: str) -> str | None:
    spec = get_provider(provider)
    for line in output.splitlines():
        url = spec.parse_line(line)
        if url:
            return url
    return None


@pytest.mark.parametrize(
    ("provider", "output", "expected"),
    [
        ("cloudflared", CLOUDFLARED_OUTPUT, f"https://{CLOUDFLARED_HOST}"),
        ("ngrok", NGROK_OUTPUT, f"https://{NGROK_HOST}"),
        ("localhost.run", LOCALHOST_RUN_JSON, f"https://{LHR_HOST}"),
        ("localhost.run", LOCALHOST_RUN_TEXT, f"https://{LHR_HOST}"),
    ],
)
def test_public_url_is_found_in_real_output(provider: str, output: str, expected: str) -> None:
    assert first_url(provider, output) == expected


@pytest.mark.parametrize(
    ("provider", "output"),
    [
        # The API host in an error is not a tunnel.
        ("cloudflared", CLOUDFLARED_NO_INTERNET),
        ("ngrok", NGROK_NO_AUTHTOKEN),
        # The banner's documentation links are not the tunnel.
        ("localhost.run", LOCALHOST_RUN_TEXT.split("** your connection")[0]),
    ],
)
def test_no_url_in_failures_or_banners(provider: str, output: str) -> None:
    assert first_url(provider, output) is None


def test_ngrok_ignores_plain_http_tunnels_and_reads_logfmt() -> None:
    ngrok = get_provider("ngrok")
    http_only = '{"msg":"started tunnel","url":"http://abc.ngrok.io","obj":"tunnels"}'
    assert ngrok.parse_line(http_only) is None
    logfmt = (
        't=2024-05-01T10:00:00+0000 lvl=info msg="started tunnel" obj=tunnels '
        "name=command_line addr=http://127.0.0.1:8080 url=https://ab12.ngrok-free.app"
    )
    assert ngrok.parse_line(logfmt) == "https://ab12.ngrok-free.app"


def test_ansi_colours_are_ignored() -> None:
    line = (
        f"\x1b[32m2024-05-01T10:00:01Z\x1b[0m \x1b[32mINF\x1b[0m |  https://{CLOUDFLARED_HOST}  |"
    )
    assert strip_ansi(line).startswith("2024-05-01T10:00:01Z INF")
    assert get_provider("cloudflared").parse_line(line) == f"https://{CLOUDFLARED_HOST}"


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://a-b.trycloudflare.com", "https://a-b.trycloudflare.com"),
        ("https://A.ngrok-free.app/", "https://a.ngrok-free.app"),
        ("https://x.lhr.life:443", "https://x.lhr.life"),
        ("http://x.lhr.life", None),
        ("https://x.lhr.life/path", None),
        ("https://user@evil.com", None),
        ("https://localhost", None),
    ],
)
def test_public_origin(url: str, origin: str | None) -> None:
    assert public_origin(url) == origin


def test_failures_are_explained() -> None:
    assert "authtoken" in get_provider("ngrok").explain(NGROK_NO_AUTHTOKEN.splitlines())
    assert "trycloudflare.com" in get_provider("cloudflared").explain(
        CLOUDFLARED_NO_INTERNET.splitlines()
    )
    lhr = get_provider("localhost.run")
    assert "port 22" in lhr.explain(
        ["ssh: Could not resolve hostname localhost.run: Name or service not known"]
    )


def test_command_lines() -> None:
    assert PROVIDERS["cloudflared"].command("cloudflared", 8080) == [
        "cloudflared",
        "tunnel",
        "--url",
        "http://127.0.0.1:8080",
        "--no-autoupdate",
    ]
    assert PROVIDERS["cloudflared"].command("cf", 8443, "https")[-1] == "--no-tls-verify"
    assert PROVIDERS["ngrok"].command("ngrok", 8080) == [
        "ngrok",
        "http",
        "127.0.0.1:8080",
        "--log",
        "stdout",
        "--log-format",
        "json",
    ]
    ssh = PROVIDERS["localhost.run"].command("ssh", 8080)
    assert ssh[0] == "ssh" and "-R" in ssh and "80:127.0.0.1:8080" in ssh
    assert "StrictHostKeyChecking=accept-new" in ssh and "ServerAliveInterval=30" in ssh
    assert ssh[ssh.index("nokey@localhost.run") :] == [
        "nokey@localhost.run",
        "--",
        "--output",
        "json",
    ]
    # A server listening on one specific address is reached there.
    assert "80:[::1]:8080" in PROVIDERS["localhost.run"].command("ssh", 8080, host="[::1]")
    assert (
        PROVIDERS["cloudflared"].command("cf", 8080, host="192.0.2.7")[3] == "http://192.0.2.7:8080"
    )
    with pytest.raises(ValueError, match="plain http"):
        PROVIDERS["localhost.run"].command("ssh", 8443, "https")


def test_missing_message_names_the_tool_and_where_to_get_it() -> None:
    for provider in PROVIDERS.values():
        message = provider.missing_message()
        assert provider.executable in message and "--tunnel-path" in message
        assert "never downloads" in message and "\n" not in message
