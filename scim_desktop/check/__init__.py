"""``scim-desktop check``: Okta's SCIM tests (its SPEC suite, the user lifecycle, group push,
entitlement discovery) run against any SCIM server, with a report saying what Okta does with
each wrong answer and how to fix it (issue 15).

``runner`` sends and judges, ``suites`` holds the checks, ``report`` writes text, JSON, JUnit
and HTML, ``cli`` is the subcommand. For a window ("Check a server"), on a worker thread::

    options = make_options(url, token=..., suites=...)  # OptionsError: what the form lacks
    runner = Runner(options, on_check=signal.emit, cancel=event)
    report = runner.run()          # Unreachable: the server never answered
    # report.refused: the server refused the credential (the first check fails, once)
    # progress: len(report.checks so far) of sum(EXPECTED_CHECKS[s] for s in suites)
    # export: report.to_json(), check.report.to_junit(report), check.report.to_html(report)

``on_check`` is called on the worker thread with each finished :class:`Check` (redacted: its
requests and answers, ``findings`` with Okta's effect and the fix); setting ``cancel`` skips the
checks left and cleans up (``report.interrupted``).
"""

from __future__ import annotations

from scim_desktop.check.model import (
    EXPECTED_CHECKS,
    SUITES,
    Check,
    Finding,
    Report,
    RequestLog,
)
from scim_desktop.check.runner import (
    CheckOptions,
    OptionsError,
    Runner,
    Unreachable,
    make_options,
)

__all__ = [
    "EXPECTED_CHECKS",
    "SUITES",
    "Check",
    "CheckOptions",
    "Finding",
    "OptionsError",
    "Report",
    "RequestLog",
    "Runner",
    "Unreachable",
    "make_options",
]
