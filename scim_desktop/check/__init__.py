"""``scim-desktop check``: Okta's SCIM tests (its SPEC suite, the user lifecycle, group push,
entitlement discovery) run against any SCIM server, with a report saying what Okta does with
each wrong answer and how to fix it (issue 15).

``runner`` sends and judges, ``suites`` holds the checks, ``report`` writes text, JSON, JUnit
and HTML, ``cli`` is the subcommand. For a window: :class:`Runner` with ``on_check`` (one call
per finished check) and ``cancel`` (a ``threading.Event``), run on a worker thread.
"""

from __future__ import annotations

from scim_desktop.check.model import SUITES, Check, Finding, Report, RequestLog
from scim_desktop.check.runner import CheckOptions, Runner, Unreachable

__all__ = [
    "SUITES",
    "Check",
    "CheckOptions",
    "Finding",
    "Report",
    "RequestLog",
    "Runner",
    "Unreachable",
]
