"""Attribute paths (RFC 7644 §3.10) and case-insensitive attribute access (RFC 7643 §2.1).

An attribute path is ``[schema-URN ":"] attrName ["." subAttrName]``. Attribute names are
case-insensitive, so every lookup in a resource goes through :func:`ci_get` / :func:`ci_key`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from scim_desktop.core.errors import InvalidPath

# ATTRNAME = ALPHA *(nameChar), nameChar = "-" / "_" / DIGIT / ALPHA (RFC 7644 §3.10).
# "$ref" is allowed as a sub-attribute name (RFC 7643 §2.4).
_NAME = r"(?:\$ref|[A-Za-z][A-Za-z0-9_\-]*)"
_ATTR_PATH_RE = re.compile(rf"^(?P<attr>{_NAME})(?:\.(?P<sub>{_NAME}))?$")
# A schema URN ends at the last ":" that is followed by an attribute path.
_URN_RE = re.compile(r"^(?P<urn>urn:[A-Za-z0-9][A-Za-z0-9\-.:_]*?):(?P<rest>[^:]+)$", re.I)


@dataclass(frozen=True, slots=True)
class AttrPath:
    """``urn`` (None when the path has no schema prefix), attribute and optional sub-attribute."""

    urn: str | None
    attr: str
    sub: str | None = None

    def __str__(self) -> str:
        text = f"{self.urn}:{self.attr}" if self.urn else self.attr
        return f"{text}.{self.sub}" if self.sub else text


def parse_attr_path(text: str) -> AttrPath:
    """Parse ``[urn:...:]attr[.sub]``; raise :class:`InvalidPath` when it is not one."""
    text = text.strip()
    urn: str | None = None
    rest = text
    if text[:4].lower() == "urn:":
        m = _URN_RE.match(text)
        if not m:
            raise InvalidPath(f"Invalid attribute path {text!r}")
        urn, rest = m.group("urn"), m.group("rest")
    m2 = _ATTR_PATH_RE.match(rest)
    if not m2:
        raise InvalidPath(f"Invalid attribute path {text!r}")
    return AttrPath(urn, m2.group("attr"), m2.group("sub"))


def ci_key(mapping: dict[str, Any], name: str) -> str | None:
    """The key of ``mapping`` equal to ``name`` ignoring case, or None."""
    if name in mapping:
        return name
    lowered = name.lower()
    for key in mapping:
        if key.lower() == lowered:
            return key
    return None


def ci_get(mapping: Any, name: str, default: Any = None) -> Any:
    """``mapping[name]`` ignoring the case of ``name``; ``default`` when absent or not a dict."""
    if not isinstance(mapping, dict):
        return default
    key = ci_key(mapping, name)
    return default if key is None else mapping[key]
