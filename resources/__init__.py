"""Data files shipped with SCIM Desktop (installed as the package scim_desktop.resources)."""
