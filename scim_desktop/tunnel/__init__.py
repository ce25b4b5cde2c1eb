"""Public https URLs through a tunnel tool the user already has (cloudflared, ngrok, ssh to
localhost.run), run as a child process that always ends with the server."""

from scim_desktop.tunnel.process import TunnelError, TunnelProcess, TunnelToolMissing, locate_tool
from scim_desktop.tunnel.providers import PROVIDERS, Provider, get_provider

__all__ = [
    "PROVIDERS",
    "Provider",
    "TunnelError",
    "TunnelProcess",
    "TunnelToolMissing",
    "get_provider",
    "locate_tool",
]
