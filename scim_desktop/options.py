"""Command-line options shared by ``scim-desktop serve`` and the window (``gui``).

The option definitions and the step from parsed options to a ``ServerConfig`` live here, below
both ``cli`` (which builds the parser and runs the commands) and ``gui.app`` (which mixes the
options with the window's saved settings), so neither imports the other. Stdlib argparse
only: no Qt, no Tornado.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from scim_desktop.config import (
    DEFAULT_HOST,
    DEFAULT_MAX_BODY,
    DEFAULT_PORT,
    DEFAULT_TOKEN_TTL,
    DEFAULT_TUNNEL_TIMEOUT,
    OKTA_REDIRECT_URIS,
    AuthConfig,
    ConfigError,
    OAuthConfig,
    ServerConfig,
    TlsConfig,
    TunnelConfig,
    UpstreamConfig,
    default_db_path,
    load_or_create_oauth_client,
    load_or_create_token,
    oauth_path_for,
    token_path_for,
)
from scim_desktop.core.catalog import Catalog, CatalogError, parse_catalog_bytes
from scim_desktop.core.faults import (
    PRESETS,
    FaultRule,
    FaultSpecError,
    get_preset,
    parse_fault_spec,
)


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


def add_server_options(parser: argparse.ArgumentParser) -> None:
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
        "--catalog",
        type=Path,
        default=None,
        metavar="FILE",
        help="load an entitlement catalog (roles, entitlements, custom user attributes; JSON, "
        "see the README) and keep it in the data file, replacing the stored one",
    )
    parser.add_argument(
        "--max-body",
        type=int,
        default=DEFAULT_MAX_BODY,
        metavar="BYTES",
        help=f"largest request body accepted (default {DEFAULT_MAX_BODY}); larger is 413",
    )


def add_connect_options(parser: argparse.ArgumentParser) -> None:
    """Options for connecting a real Okta tenant: tunnel, OAuth 2.0, TLS."""
    from scim_desktop.tunnel.providers import PROVIDERS

    tunnel = parser.add_argument_group("public URL (tunnel)")
    tunnel.add_argument(
        "--tunnel",
        choices=tuple(PROVIDERS),
        help="start a tunnel with a tool you have (cloudflared: no account; ngrok: your "
        "authtoken; localhost.run: only ssh) and print the public https base URL; it stops "
        "with the server",
    )
    tunnel.add_argument(
        "--tunnel-path", metavar="PATH", help="the tunnel tool's executable (default: on PATH)"
    )
    tunnel.add_argument(
        "--tunnel-timeout",
        type=float,
        default=DEFAULT_TUNNEL_TIMEOUT,
        metavar="SECONDS",
        help=f"how long the tool may take to print its URL (default {DEFAULT_TUNNEL_TIMEOUT:g})",
    )
    oauth = parser.add_argument_group("OAuth 2.0 (Okta's OAuth2 authentication mode)")
    oauth.add_argument(
        "--oauth",
        action="store_true",
        help="require access tokens from this server's own OAuth 2.0 endpoints "
        "(/oauth/authorize, /oauth/token): authorization code grant with refresh tokens",
    )
    oauth.add_argument(
        "--oauth-client-id", metavar="ID", help="client id (default: generated and kept)"
    )
    oauth.add_argument(
        "--oauth-client-secret",
        metavar="SECRET",
        help="client secret (default: generated and kept beside the database, mode 0600)",
    )
    oauth.add_argument(
        "--oauth-redirect-uri",
        action="append",
        default=[],
        metavar="URI",
        help="allowed redirect URI (repeatable; '*' matches letters, digits and -._~ only; "
        "the word 'okta' stands for Okta's own callbacks, which are the default)",
    )
    oauth.add_argument(
        "--oauth-token-ttl",
        type=int,
        default=None,
        metavar="SECONDS",
        help=f"access token lifetime (default {DEFAULT_TOKEN_TTL}; short values make Okta's "
        "refresh visible)",
    )
    tls = parser.add_argument_group("TLS")
    tls.add_argument(
        "--tls",
        action="store_true",
        help="serve https with a self-signed certificate made on first use and kept beside "
        "the database (its SHA-256 fingerprint is printed)",
    )
    tls.add_argument("--tls-cert", type=Path, metavar="PATH", help="your certificate (PEM)")
    tls.add_argument("--tls-key", type=Path, metavar="PATH", help="its private key (PEM)")


def add_upstream_options(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """Proxy mode (issue 14): ``--upstream URL`` and how the proxy authenticates to it.
    Required for ``proxy``; optional for ``gui`` (the window then opens in proxy mode)."""
    group = parser.add_argument_group("proxy to your own SCIM server")
    group.add_argument(
        "--upstream",
        required=required,
        metavar="URL",
        help="your SCIM server's base URL (http or https): /scim/v2/<rest> here is forwarded "
        "to URL/<rest>",
    )
    cred = group.add_mutually_exclusive_group()
    cred.add_argument(
        "--upstream-token",
        metavar="TOKEN",
        help="send 'Authorization: Bearer TOKEN' upstream; clients then authenticate with "
        "this proxy's own credential (--token, generated and kept by default)",
    )
    cred.add_argument(
        "--upstream-basic", metavar="USER:PASS", help="send HTTP Basic credentials upstream"
    )
    cred.add_argument(
        "--upstream-header",
        metavar='"NAME: VALUE"',
        help="send this header upstream (an API key, say)",
    )
    group.add_argument(
        "--insecure-upstream",
        action="store_true",
        help="do not verify the upstream's https certificate (a self-signed test server)",
    )


def upstream_from(args: argparse.Namespace) -> UpstreamConfig | None:
    """The ``--upstream*`` options as an UpstreamConfig (None: the mock server)."""
    url = getattr(args, "upstream", None)
    token = getattr(args, "upstream_token", None)
    basic = getattr(args, "upstream_basic", None)
    header = getattr(args, "upstream_header", None)
    insecure = getattr(args, "insecure_upstream", False)
    if url is None:
        if token is not None or basic is not None or header is not None or insecure:
            raise ConfigError(
                "--upstream-token/-basic/-header and --insecure-upstream need --upstream URL"
            )
        return None
    return UpstreamConfig(
        url,
        token=token,
        basic=UpstreamConfig.parse_basic(basic) if basic is not None else None,
        header=UpstreamConfig.parse_header(header) if header is not None else None,
        insecure=insecure,
    )


def _oauth_requested(args: argparse.Namespace) -> bool:
    return bool(
        getattr(args, "oauth", False)
        or getattr(args, "oauth_client_id", None)
        or getattr(args, "oauth_client_secret", None)
        or getattr(args, "oauth_redirect_uri", None)
        or getattr(args, "oauth_token_ttl", None) is not None
    )


def _oauth_auth(args: argparse.Namespace, db_path: Path) -> AuthConfig:
    """OAuth mode: the client id and secret given, kept or generated (in <db>.oauth.json)."""
    uris: list[str] = []
    for uri in args.oauth_redirect_uri or ["okta"]:
        uris.extend(OKTA_REDIRECT_URIS if uri.strip().lower() == "okta" else [uri.strip()])
    ttl = DEFAULT_TOKEN_TTL if args.oauth_token_ttl is None else args.oauth_token_ttl
    # Validate what was typed before anything is written.
    OAuthConfig(
        args.oauth_client_id or "x",
        args.oauth_client_secret or "x",
        tuple(dict.fromkeys(uris)),
        ttl,
    )
    path = oauth_path_for(db_path)
    try:
        client_id, secret = load_or_create_oauth_client(
            path, args.oauth_client_id, args.oauth_client_secret
        )
    except OSError as exc:
        raise ConfigError(
            f"cannot keep the OAuth client beside {db_path}: {exc.strerror or exc}"
        ) from None
    config = OAuthConfig(client_id, secret, tuple(dict.fromkeys(uris)), ttl, state_path=path)
    return AuthConfig("oauth", oauth=config)


def _tls_config(args: argparse.Namespace, db_path: Path) -> TlsConfig | None:
    cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    if (cert is None) != (key is None):
        raise ConfigError("--tls-cert and --tls-key go together (a PEM certificate and its key)")
    if cert is not None and key is not None:
        return TlsConfig(cert.expanduser().resolve(), key.expanduser().resolve(), False)
    if getattr(args, "tls", False):
        return TlsConfig.generated_for(db_path)
    return None


def _tunnel_config(args: argparse.Namespace) -> TunnelConfig | None:
    provider = getattr(args, "tunnel", None)
    if provider is None:
        if getattr(args, "tunnel_path", None):
            raise ConfigError("--tunnel-path needs --tunnel (which tool it is)")
        return None
    return TunnelConfig(
        provider,
        args.tunnel_path,
        getattr(args, "tunnel_timeout", DEFAULT_TUNNEL_TIMEOUT),
    )


def explicit_auth(args: argparse.Namespace) -> AuthConfig | None:
    """The authentication the options ask for (--no-auth, --basic, --token), or None."""
    if args.no_auth:
        return AuthConfig("none")
    if args.basic is not None:
        return AuthConfig.parse_basic(args.basic)
    if args.token is not None:
        return AuthConfig("bearer", token=args.token)
    return None


def faults_from(args: argparse.Namespace) -> tuple[FaultRule, ...]:
    """The --fault / --fault-preset rules; a bad spec is a ConfigError naming what is wrong."""
    try:
        return fault_rules(args.fault_items)
    except FaultSpecError as exc:
        raise ConfigError(str(exc)) from None


def catalog_from(args: argparse.Namespace) -> Catalog | None:
    """The ``--catalog FILE`` catalog, checked; a bad file is a ConfigError of one line that
    names the file and the place (``resourceTypes[1].endpoint: ...``)."""
    path: Path | None = getattr(args, "catalog", None)
    if path is None:
        return None
    try:
        data = path.expanduser().read_bytes()
    except OSError as exc:
        raise ConfigError(f"--catalog {path}: cannot read it ({exc.strerror})") from None
    try:
        return parse_catalog_bytes(data)
    except CatalogError as exc:
        raise ConfigError(f"--catalog {path}: {exc}") from None


def make_config(args: argparse.Namespace) -> ServerConfig:
    """Settings from parsed options; generates (or reuses) the bearer token by default."""
    faults = faults_from(args)
    catalog = catalog_from(args)
    db_path = (args.db or default_db_path()).expanduser().resolve()
    oauth = _oauth_requested(args)
    if oauth and (args.no_auth or args.basic is not None or args.token is not None):
        raise ConfigError("--oauth cannot be combined with --token, --basic or --no-auth")
    tls = _tls_config(args, db_path)
    tunnel = _tunnel_config(args)
    if tunnel is not None and tunnel.provider == "localhost.run" and tls is not None:
        raise ConfigError(
            "localhost.run forwards plain http to this computer: drop --tls (the tunnel gives "
            "Okta https already), or use cloudflared or ngrok"
        )
    upstream = upstream_from(args)
    given = explicit_auth(args)
    if upstream is not None and not upstream.has_credential:
        # Transparent proxy: the client's Authorization goes upstream and the upstream decides;
        # a credential of our own would only be a second lock Okta cannot open.
        if oauth or (given is not None and given.mode != "none"):
            raise ConfigError(
                "--token, --basic and --oauth need an upstream credential (--upstream-token, "
                "--upstream-basic or --upstream-header): without one the proxy is transparent "
                "and your server checks the client's own credential"
            )
        auth = AuthConfig("none")
    elif oauth:
        auth = _oauth_auth(args, db_path)
    elif given is not None:
        auth = given
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
        tls=tls,
        tunnel=tunnel,
        catalog=catalog,
        upstream=upstream,
    )
