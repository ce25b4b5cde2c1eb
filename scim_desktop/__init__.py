"""SCIM Desktop: a mock SCIM 2.0 server for demoing and exploring Okta provisioning."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("scim-desktop")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
