"""Server settings: frozen dataclasses, validated once when they are made."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from scim_desktop.core.faults import FaultRule

APP_NAME = "scim-desktop"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
BASE_PATH = "/scim/v2"
#: Request bodies above this size are answered 413 (RFC 7644 §3.12 via HTTP).
DEFAULT_MAX_BODY = 1024 * 1024


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


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """``mode`` is "none", "bearer" or "basic"."""

    mode: str = "bearer"
    token: str = ""
    username: str = ""
    password: str = ""

    def __post_init__(self) -> None:
        if self.mode not in ("none", "bearer", "basic"):
            raise ConfigError(f"unknown auth mode {self.mode!r} (use none, bearer or basic)")
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
        return "no authentication (--no-auth)"


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

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is out of range (0-65535; 0 picks a free one)")
        if not self.host:
            raise ConfigError("host must not be empty")
        if self.max_body_bytes < 1024:
            raise ConfigError("the body size limit must be at least 1024 bytes")


def load_or_create_token(path: Path) -> str:
    """The token kept at ``path``, or a new random one saved there (mode 0600)."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    if token and not any(c.isspace() for c in token):
        return token
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    os.replace(tmp, path)
    return token
