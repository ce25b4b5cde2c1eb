"""Server settings: frozen dataclasses, validated once when they are made."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import platformdirs

from scim_desktop.core.catalog import Catalog
from scim_desktop.core.faults import FaultRule
from scim_desktop.core.oauth import DEFAULT_SCOPE, redirect_pattern_error
from scim_desktop.store.private import make_private_dir, open_private, tighten_file
from scim_desktop.tunnel.providers import PROVIDERS

APP_NAME = "scim-desktop"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
BASE_PATH = "/scim/v2"
#: Request bodies above this size are answered 413 (RFC 7644 §3.12 via HTTP).
DEFAULT_MAX_BODY = 1024 * 1024
#: Lifetime of OAuth access tokens; short values make Okta's refresh visible in a demo.
DEFAULT_TOKEN_TTL = 3600
#: How long a tunnel tool may take to print its public URL.
DEFAULT_TUNNEL_TIMEOUT = 30.0
#: The redirect URIs Okta's provisioning client uses (Okta's SCIM guide: "Okta requires that all
#: SCIM applications support the following redirect URIs"), plus the callback of App
#: Integration Wizard apps (``/admin/app/generic/oauth20redirect``), also on an org's own
#: ``<org>-admin`` domain. ``*`` stands for one or more RFC 3986 unreserved characters
#: (letters, digits, ``-._~``): it never spans a ``/``, ``:``, ``@``, ``?``, ``#`` or ``\``, so
#: ``https://*-admin.okta.com/...`` only ever matches hosts under okta.com.
OKTA_REDIRECT_URIS: tuple[str, ...] = (
    "https://system-admin.okta.com/admin/app/cpc/*/oauth/callback",
    "https://system-admin.okta-emea.com/admin/app/cpc/*/oauth/callback",
    "https://system-admin.oktapreview.com/admin/app/cpc/*/oauth/callback",
    "https://system-admin.trexcloud.com/admin/app/cpc/*/oauth/callback",
    "https://system-admin.okta.com/admin/app/generic/oauth20redirect",
    "https://system-admin.okta-emea.com/admin/app/generic/oauth20redirect",
    "https://system-admin.oktapreview.com/admin/app/generic/oauth20redirect",
    "https://*-admin.okta.com/admin/app/generic/oauth20redirect",
    "https://*-admin.okta-emea.com/admin/app/generic/oauth20redirect",
    "https://*-admin.oktapreview.com/admin/app/generic/oauth20redirect",
)


class ConfigError(ValueError):
    """A setting is wrong; the message says which and why, in one line."""


def data_dir() -> Path:
    """The per-user data folder (e.g. ~/.local/share/scim-desktop on Linux)."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_db_path() -> Path:
    return data_dir() / "scim-desktop.json"


def token_path_for(db_path: Path) -> Path:
    """Where the generated bearer token is kept: beside the database."""
    return db_path.with_name(db_path.stem + ".token")


def password_key_path_for(db_path: Path) -> Path:
    """Where the secret key of stored password digests is kept: beside the database, not in
    it, so the data file alone (attached to a bug report, say) cannot be brute-forced."""
    return db_path.with_name(db_path.stem + ".password-key")


def oauth_path_for(db_path: Path) -> Path:
    """Where the OAuth client and the tokens it was issued are kept: beside the database."""
    return db_path.with_name(db_path.stem + ".oauth.json")


def upstream_credential_path_for(db_path: Path) -> Path:
    """Where the window keeps the proxy's upstream credential: beside the database, mode 0600,
    like the generated bearer token (never in QSettings, a plain file readable by the user's
    other programs and often synced)."""
    return db_path.with_name(db_path.stem + ".upstream.json")


def basic_password_path_for(db_path: Path) -> Path:
    """Where the window keeps its Basic-auth password: beside the database, mode 0600, like
    the generated bearer token and the upstream credential (never in QSettings: a plain INI
    file readable by the user's other programs and often synced). Only the window keeps one
    (``serve --basic`` takes it on the command line each time)."""
    return db_path.with_name(db_path.stem + ".basic.json")


def tls_dir_for(db_path: Path) -> Path:
    """Where the generated TLS certificate and key are kept: beside the database."""
    return db_path.with_name(db_path.stem + ".tls")


@dataclass(frozen=True, slots=True)
class OAuthConfig:
    """OAuth 2.0 authorization server settings (RFC 6749): one confidential client (Okta)."""

    client_id: str
    client_secret: str
    #: Allowed redirect URIs (RFC 6749 §3.1.2.2); ``*`` matches unreserved characters.
    redirect_uris: tuple[str, ...] = OKTA_REDIRECT_URIS
    #: Access token lifetime in seconds (``expires_in``, RFC 6749 §5.1).
    token_ttl: int = DEFAULT_TOKEN_TTL
    #: The JSON file that keeps the client and the issued tokens across restarts (None: memory).
    state_path: Path | None = None
    #: Scope granted when a client asks for none (RFC 6749 §3.3).
    default_scope: str = DEFAULT_SCOPE

    def __post_init__(self) -> None:
        for name, value in (("client id", self.client_id), ("client secret", self.client_secret)):
            if not value:
                raise ConfigError(f"the OAuth {name} must not be empty")
            if any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7E for c in value):
                raise ConfigError(f"the OAuth {name} must be printable ASCII without spaces")
        if ":" in self.client_id:
            raise ConfigError("the OAuth client id must not contain ':' (HTTP Basic uses it)")
        if not 1 <= self.token_ttl <= 366 * 86400:
            raise ConfigError("--oauth-token-ttl must be between 1 second and a year")
        if not self.redirect_uris:
            raise ConfigError("OAuth needs at least one allowed redirect URI")
        for uri in self.redirect_uris:
            problem = redirect_pattern_error(uri)
            if problem:
                raise ConfigError(f"--oauth-redirect-uri {uri!r}: {problem}")


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """Serve https with this certificate and key (PEM). ``self_signed``: generate them on
    first use (and again when they expire or miss a host name)."""

    cert_path: Path
    key_path: Path
    self_signed: bool = True

    @staticmethod
    def generated_for(db_path: Path) -> TlsConfig:
        folder = tls_dir_for(db_path)
        return TlsConfig(folder / "cert.pem", folder / "key.pem", self_signed=True)


@dataclass(frozen=True, slots=True)
class TunnelConfig:
    """Start a tunnel tool (a child process) that gives the server a public https URL."""

    provider: str
    #: The tool's executable; None: look for it on PATH.
    tool_path: str | None = None
    timeout: float = DEFAULT_TUNNEL_TIMEOUT

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ConfigError(
                f"unknown tunnel provider {self.provider!r} (use {', '.join(PROVIDERS)})"
            )
        if not 1 <= self.timeout <= 600:
            raise ConfigError("--tunnel-timeout must be between 1 and 600 seconds")


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """``mode`` is "none", "bearer", "basic" or "oauth" (access tokens issued by this server's
    own OAuth 2.0 endpoints; ``oauth`` holds their settings)."""

    mode: str = "bearer"
    token: str = ""
    username: str = ""
    password: str = ""
    oauth: OAuthConfig | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("none", "bearer", "basic", "oauth"):
            raise ConfigError(f"unknown auth mode {self.mode!r} (use none, bearer, basic or oauth)")
        if self.mode == "oauth" and self.oauth is None:
            raise ConfigError("OAuth mode needs its client settings")
        if self.mode == "bearer" and not self.token:
            raise ConfigError("bearer auth needs a non-empty token")
        if self.mode == "bearer" and any(c.isspace() for c in self.token):
            raise ConfigError("the token must not contain spaces")
        if self.mode == "basic" and (not self.username or not self.password):
            raise ConfigError("basic auth needs USER:PASS with both parts non-empty")
        if self.mode == "basic" and ":" in self.username:
            raise ConfigError("the basic auth user name must not contain ':'")

    @staticmethod
    def parse_basic(text: str) -> AuthConfig:
        user, sep, password = text.partition(":")
        if not sep:
            raise ConfigError("--basic takes USER:PASS")
        return AuthConfig(mode="basic", username=user, password=password)

    def describe(self) -> str:
        """How a client authenticates, for the start-up banner (shows the secret: it is the
        user's own terminal and they need to paste it into Okta)."""
        if self.mode == "bearer":
            return f"Authorization: Bearer {self.token}"
        if self.mode == "basic":
            return f"HTTP Basic, user {self.username!r}, password {self.password!r}"
        if self.mode == "oauth":
            return (
                "OAuth 2.0 (authorization code with refresh tokens): "
                "Authorization: Bearer <access token from the token URL>"
            )
        return "no authentication (--no-auth)"


#: How long the proxy waits for the upstream's whole answer: Okta's own SCIM timeout.
DEFAULT_UPSTREAM_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """Proxy mode (issue 14): forward ``/scim/v2/<rest>`` to ``url/<rest>``.

    At most one credential: ``token`` (sent as ``Authorization: Bearer``), ``basic`` (user,
    password) or ``header`` (name, value). With one, the proxy authenticates clients with its
    own auth settings and sends this credential upstream instead of theirs (credential swap);
    without one it is transparent (the client's ``Authorization`` goes upstream and the
    upstream decides). ``insecure``: do not verify the upstream's https certificate."""

    url: str
    token: str | None = None
    basic: tuple[str, str] | None = None
    header: tuple[str, str] | None = None
    insecure: bool = False
    #: Seconds for the upstream's whole answer (tests use a short one).
    timeout: float = DEFAULT_UPSTREAM_TIMEOUT

    def __post_init__(self) -> None:
        url = self.url.strip()
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in ("http", "https"):
            raise ConfigError(f"--upstream {self.url!r}: give an http:// or https:// URL")
        if "?" in rest or "#" in rest:
            raise ConfigError(f"--upstream {self.url!r}: the URL must not have a query or fragment")
        authority, _, path = rest.partition("/")
        host = authority.rpartition("@")[2]
        if "@" in authority:
            # userinfo in a URL ends up in logs and the banner: a credential option is the way.
            raise ConfigError("--upstream: put no user:password in the URL; use --upstream-basic")
        if not host or host.startswith(":") or any(c.isspace() for c in url):
            raise ConfigError(f"--upstream {self.url!r}: the URL has no host name")
        _, colon, port = host.rpartition(":") if not host.endswith("]") else ("", "", "")
        if colon and (not port.isdigit() or not 0 < int(port) < 65536):
            raise ConfigError(f"--upstream {self.url!r}: the port is not a number from 1 to 65535")
        # Trailing slashes normalised: "<url>/<rest>" is then exactly one slash apart.
        path = "/" + path.strip("/") if path.strip("/") else ""
        object.__setattr__(self, "url", f"{scheme.lower()}://{authority}{path}")
        given = [x for x in (self.token, self.basic, self.header) if x is not None]
        if len(given) > 1:
            raise ConfigError("use one of --upstream-token, --upstream-basic and --upstream-header")
        if self.token is not None and (not self.token or any(c.isspace() for c in self.token)):
            raise ConfigError("--upstream-token must be non-empty, without spaces")
        if self.basic is not None and (not self.basic[0] or ":" in self.basic[0]):
            raise ConfigError("--upstream-basic takes USER:PASS (a user name without ':')")
        if self.header is not None:
            name, value = self.header
            if not name or not all(c.isalnum() or c in "!#$%&'*+-.^_`|~" for c in name):
                raise ConfigError('--upstream-header takes "Name: value" (Name a header name)')
            if not value or any(c in value for c in "\r\n\0"):
                raise ConfigError("--upstream-header needs a value on one line")
            if name.lower() in HOP_OR_FRAMING:
                raise ConfigError(f"--upstream-header cannot set {name} (the proxy sets it)")
        if not 0.1 <= self.timeout <= 600:
            raise ConfigError("the upstream timeout must be between 0.1 and 600 seconds")

    @property
    def has_credential(self) -> bool:
        """Credential swap (True) or transparent (False)."""
        return self.token is not None or self.basic is not None or self.header is not None

    @property
    def https(self) -> bool:
        return self.url.startswith("https://")

    def describe_credential(self) -> str:
        """How the proxy authenticates to the upstream, for the banner: never the secret."""
        if self.token is not None:
            return "Authorization: Bearer *** (--upstream-token)"
        if self.basic is not None:
            return f"HTTP Basic, user {self.basic[0]!r}, password *** (--upstream-basic)"
        if self.header is not None:
            return f"{self.header[0]}: *** (--upstream-header)"
        return "the client's own Authorization, passed through (transparent)"

    def secrets(self) -> tuple[str, ...]:
        """The credential's secret texts (kept out of answers and records)."""
        if self.token is not None:
            return (self.token,)
        if self.basic is not None:
            user, password = self.basic
            blob = base64.b64encode(f"{user}:{password}".encode()).decode()
            return tuple(s for s in (password, blob) if s)
        if self.header is not None:
            return (self.header[1],)
        return ()

    @staticmethod
    def parse_basic(text: str) -> tuple[str, str]:
        user, sep, password = text.partition(":")
        if not sep:
            raise ConfigError("--upstream-basic takes USER:PASS")
        return user, password

    @staticmethod
    def parse_header(text: str) -> tuple[str, str]:
        name, sep, value = text.partition(":")
        if not sep:
            raise ConfigError('--upstream-header takes "Name: value"')
        return name.strip(), value.strip()


#: Header fields --upstream-header must not name: hop-by-hop ones (RFC 9110 §7.6.1) and the
#: message's framing, which the proxy sets for the next hop. The proxy drops these from what it
#: forwards (``server.proxy._HOP_BY_HOP`` is this set and a few more).
HOP_OR_FRAMING = frozenset(
    {
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
        "host",
        "content-length",
    }
)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    db_path: Path = field(default_factory=default_db_path)
    auth: AuthConfig = field(default_factory=lambda: AuthConfig("none"))
    max_body_bytes: int = DEFAULT_MAX_BODY
    base_path: str = BASE_PATH
    #: Fault rules active from the start (``--fault`` / ``--fault-preset``), in order.
    faults: tuple[FaultRule, ...] = ()
    #: Seed for the fault engine's random source, so probabilistic runs repeat.
    fault_seed: int | None = None
    #: Serve https (None: plain http, the default).
    tls: TlsConfig | None = None
    #: Start a tunnel with the server (None: none; the window starts one on demand).
    tunnel: TunnelConfig | None = None
    #: ``--catalog FILE``: the entitlement catalog to store and serve, replacing the one in
    #: the data file (None: serve the stored one, if any).
    catalog: Catalog | None = None
    #: Proxy mode: forward SCIM requests to this server (None: the mock server).
    upstream: UpstreamConfig | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is out of range (0-65535; 0 picks a free one)")
        if not self.host:
            raise ConfigError("host must not be empty")
        if self.max_body_bytes < 1024:
            raise ConfigError("the body size limit must be at least 1024 bytes")


def load_or_create_token(path: Path) -> str:
    """The token kept at ``path``, or a new random one saved there (mode 0600). A kept file
    readable by others (an older version wrote it 0644) is made private."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    if token and not any(c.isspace() for c in token):
        tighten_file(path)
        return token
    token = secrets.token_urlsafe(32)
    write_private_file(path, (token + "\n").encode())
    return token


def load_or_create_password_key(path: Path) -> bytes:
    """The 32-byte key kept at ``path`` (hex), or a new random one saved there (mode 0600).
    An unreadable key is replaced: digests made with the old one can then no longer be
    checked, which loses nothing the server needs (it never checks passwords)."""
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        key = b""
    if len(key) == 32:
        tighten_file(path)
        return key
    key = secrets.token_bytes(32)
    write_private_file(path, key.hex().encode() + b"\n")
    return key


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync,
    ``os.replace``), readable by the owner only (mode 0600). The temp file is new
    (``O_EXCL``, a random name) and 0600 from its creation: no moment when others can read
    it. A missing folder is created 0700."""
    make_private_dir(path.parent, tighten_existing=False)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def move_aside(path: Path) -> Path:
    """Rename an unreadable file to ``<name>.corrupt-<time>`` (never delete it)."""
    target = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, target)
    return target


def read_oauth_file(path: Path) -> dict[str, Any]:
    """The OAuth state file as a dict; {} when it is missing. Raises ValueError when it is not
    a JSON object, OSError when it cannot be read."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def load_or_create_oauth_client(
    path: Path, client_id: str | None = None, client_secret: str | None = None
) -> tuple[str, str]:
    """The OAuth client id and secret: the ones given, else the ones kept in ``path``, else new
    random ones. What is used is saved in ``path`` (mode 0600) so Okta's configuration keeps
    working after a restart; tokens already kept there are preserved."""
    try:
        data = read_oauth_file(path)
    except ValueError:
        move_aside(path)  # never deleted: a person may want to look at it
        data = {}
    kept_id = data.get("client_id") if isinstance(data.get("client_id"), str) else None
    kept_secret = data.get("client_secret")
    kept_secret = kept_secret if isinstance(kept_secret, str) else None
    new_id = client_id or kept_id or f"scim-desktop-{secrets.token_hex(6)}"
    new_secret = client_secret or kept_secret or secrets.token_urlsafe(32)
    if (new_id, new_secret) != (kept_id, kept_secret):
        if new_id != kept_id:
            data.pop("tokens", None)  # issued to another client: no longer usable
        data.update({"version": 1, "client_id": new_id, "client_secret": new_secret})
        write_private_file(path, orjson.dumps(data, option=orjson.OPT_INDENT_2))
    return new_id, new_secret
