# The outputs below are the tools' lines verbatim, long lines included.
# ruff: noqa: E501
"""Stand-in tunnel tools: small Python scripts that print exactly what the real tools print.

Each writes its command line and pid to ``<script>.log`` (one JSON object), prints the real
tool's output to the stream the real tool uses, then sleeps (or exits) as told.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

CLOUDFLARED_HOST = "four-dashed-word-url.trycloudflare.com"
NGROK_HOST = "1a2b-203-0-113-7.ngrok-free.app"
LHR_HOST = "8beaa541ba3dc2.lhr.life"

# cloudflared 2024.x, `cloudflared tunnel --url http://127.0.0.1:PORT --no-autoupdate`: all on
# stderr (the box is where the quick tunnel URL is).
CLOUDFLARED_OUTPUT = f"""\
2024-05-01T10:00:00Z INF Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare \
account, is a quick way to experiment and try it out. However, be aware that these account-less \
Tunnels have no uptime guarantee. If you intend to use Tunnels in production you should use a \
pre-created named tunnel by following: https://developers.cloudflare.com/cloudflare-one/connections/connect-apps
2024-05-01T10:00:00Z INF Requesting new quick Tunnel on trycloudflare.com...
2024-05-01T10:00:01Z INF +--------------------------------------------------------------------------------------------+
2024-05-01T10:00:01Z INF |  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |
2024-05-01T10:00:01Z INF |  https://{CLOUDFLARED_HOST}                                            |
2024-05-01T10:00:01Z INF +--------------------------------------------------------------------------------------------+
2024-05-01T10:00:01Z INF Version 2024.4.1
2024-05-01T10:00:01Z INF GOOS: linux, GOVersion: go1.21.9, GoArch: amd64
2024-05-01T10:00:01Z INF Settings: map[ha-connections:1 no-autoupdate:true protocol:quic url:http://127.0.0.1:8080]
2024-05-01T10:00:02Z INF Registered tunnel connection connIndex=0 connection=4f1e location=fra08 protocol=quic
"""

CLOUDFLARED_NO_INTERNET = """\
2024-05-01T10:00:00Z INF Requesting new quick Tunnel on trycloudflare.com...
failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": dial tcp: lookup \
api.trycloudflare.com: no such host
"""

# ngrok v3, `ngrok http 127.0.0.1:PORT --log stdout --log-format json`: one JSON object a line
# on stdout.
NGROK_OUTPUT = f"""\
{{"addr":"","lvl":"info","msg":"no configuration paths supplied","obj":"","t":"2024-05-01T10:00:00.101+00:00"}}
{{"lvl":"info","msg":"using configuration at default config path","path":"/home/demo/.config/ngrok/ngrok.yml","t":"2024-05-01T10:00:00.101+00:00"}}
{{"err":null,"lvl":"info","msg":"open config file","path":"/home/demo/.config/ngrok/ngrok.yml","t":"2024-05-01T10:00:00.102+00:00"}}
{{"addr":"127.0.0.1:4040","lvl":"info","msg":"starting web service","obj":"web","t":"2024-05-01T10:00:00.110+00:00"}}
{{"lvl":"info","msg":"client session established","obj":"tunnels.session","t":"2024-05-01T10:00:00.612+00:00"}}
{{"lvl":"info","msg":"tunnel session started","obj":"tunnels.session","t":"2024-05-01T10:00:00.612+00:00"}}
{{"addr":"http://127.0.0.1:8080","lvl":"info","msg":"started tunnel","name":"command_line","obj":"tunnels","t":"2024-05-01T10:00:00.680+00:00","url":"https://{NGROK_HOST}"}}
"""

NGROK_NO_AUTHTOKEN = """\
{"addr":"127.0.0.1:4040","lvl":"info","msg":"starting web service","obj":"web","t":"2024-05-01T10:00:00.110+00:00"}
{"err":"authentication failed: Usage of ngrok requires a verified account and authtoken.\\n\\nSign up for an account: https://dashboard.ngrok.com/signup\\nInstall your authtoken: https://dashboard.ngrok.com/get-started/your-authtoken\\r\\n\\r\\nERR_NGROK_4018\\r\\n","lvl":"eror","msg":"failed to reconnect session","obj":"tunnels.session","t":"2024-05-01T10:00:00.401+00:00"}
{"err":"authentication failed: Usage of ngrok requires a verified account and authtoken.","lvl":"eror","msg":"session closing","obj":"tunnels.session","t":"2024-05-01T10:00:00.401+00:00"}
"""

# `ssh ... -R 80:127.0.0.1:PORT nokey@localhost.run -- --output json`: ssh's own warning on
# stderr, localhost.run's JSON events on stdout.
LOCALHOST_RUN_JSON = f"""\
Warning: Permanently added 'localhost.run' (ED25519) to the list of known hosts.
{{"event":"authn","message":"authenticated as anonymous user","connection_id":"6a1f0c2e-5b0d-4a53-9f43-0c1b2d3e4f50"}}
{{"event":"tcpip-forward","address":"{LHR_HOST}","connection_id":"6a1f0c2e-5b0d-4a53-9f43-0c1b2d3e4f50"}}
"""

# The same without ``--output json`` (what people see in a terminal).
LOCALHOST_RUN_TEXT = f"""\

===============================================================================
Welcome to localhost.run!

Follow your favourite reverse tunnel at [https://twitter.com/localhost_run].

To set up and manage custom domains go to https://admin.localhost.run/

More details on custom domains (and how to enable subdomains of your custom
domain) at https://localhost.run/docs/custom-domains

If you get a permission denied error check the faq for how to connect with a key or
create a free tunnel without a key at [https://localhost.run/docs/faq#generating-an-ssh-key].

To explore using localhost.run visit the documentation site:
https://localhost.run/docs/

===============================================================================

** your connection id is 6a1f0c2e-5b0d-4a53-9f43-0c1b2d3e4f50, please mention it if you send me a message about an issue. **

authenticated as anonymous user
{LHR_HOST} tunneled with tls termination, https://{LHR_HOST}
create an account and add your key for a longer lasting domain name. see https://localhost.run/docs/forever-free/ for more information.
"""

_TEMPLATE = """#!{python}
import json, os, sys, time
with open({log!r}, "w") as fh:
    json.dump({{"argv": sys.argv, "pid": os.getpid()}}, fh)
stream = sys.{stream}
for line in {lines!r}:
    target = sys.stderr if line.startswith("Warning: Permanently") else stream
    target.write(line + "\\n")
    target.flush()
    time.sleep({delay!r})
{tail}
"""


def write_stand_in(
    folder: Path,
    name: str,
    output: str,
    *,
    stream: str = "stdout",
    then: str = "sleep",
    exit_code: int = 0,
    delay: float = 0.0,
) -> Path:
    """An executable ``folder/name`` that prints ``output`` line by line on ``stream``, then
    sleeps for an hour (``then="sleep"``) or exits with ``exit_code`` (``then="exit"``)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    tail = "time.sleep(3600)" if then == "sleep" else f"sys.exit({exit_code})"
    path.write_text(
        _TEMPLATE.format(
            python=sys.executable,
            log=str(path) + ".log",
            stream=stream,
            lines=output.splitlines(),
            delay=delay,
            tail=tail,
        )
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def stand_in_run(path: Path, timeout: float = 10.0) -> dict:
    """What the stand-in recorded (argv, pid), once it has started."""
    log = Path(str(path) + ".log")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return json.loads(log.read_text())
        except (FileNotFoundError, ValueError):
            time.sleep(0.02)
    raise AssertionError(f"{path} never ran")


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie nobody reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False
