"""The checker's records: a :class:`Check` (one line of the report) with the requests it sent,
and the :class:`Report` of a run. Plain data; the runner fills them, ``report.py`` writes them.

Everything in these records is already redacted (the runner redacts each exchange as it is
recorded and scrubs the credentials from every text), so any consumer may show or write them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["pass", "fail", "skip"]
#: The suites in the order they run (issue 15's ``--suite`` names).
SUITES = ("spec", "crud", "groups", "entitlements")
#: How many checks each suite reports, for a progress bar (entitlements: with one endpoint;
#: each further endpoint adds two, and a server without Okta's types gives one SKIP).
EXPECTED_CHECKS = {"spec": 12, "crud": 12, "groups": 7, "entitlements": 6}
#: An answer body kept in a report is cut to this many characters.
MAX_REPORT_BODY = 4000


@dataclass(frozen=True, slots=True)
class RequestLog:
    """One request a check sent and what came back (redacted, answer cut)."""

    method: str
    url: str
    headers: dict[str, str]
    body: str
    status: int  # 0: no answer (see error)
    response_body: str
    duration_ms: float
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "url": self.url,
            "headers": self.headers,
            "body": self.body,
            "status": self.status,
            "response_body": self.response_body,
            "duration_ms": round(self.duration_ms, 1),
        }
        if self.error:
            out["error"] = self.error
        return out


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong with an answer: what the server did, what Okta does, the fix. ``source``
    says whose rule it is: ``okta`` (Okta's provisioning client), ``spec`` (the Runscope SPEC
    test), ``strict`` (Okta's client, stricter than Runscope), ``check`` (this checker's own)."""

    what: str
    okta_effect: str
    fix: str
    effect: str = "fails"  # core/okta_expect.Effect, or "fails" for the checker's own
    source: str = "okta"
    request: int | None = None  # the index in Check.requests of the answer it is about


@dataclass(slots=True)
class Check:
    """One line of the report."""

    name: str
    suite: str
    status: Status = "pass"
    detail: str = ""  # a pass: what was seen; a fail: what the server answered; a skip: why
    okta_effect: str = ""
    fix: str = ""
    requests: list[RequestLog] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    duration_s: float = 0.0
    started: float = 0.0  # time.monotonic() when it began (the runner's bookkeeping)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "suite": self.suite,
            "status": self.status,
            "detail": self.detail,
            "okta_effect": self.okta_effect,
            "fix": self.fix,
            "requests": [r.to_json() for r in self.requests],
        }


@dataclass(slots=True)
class Report:
    """A whole run: its checks in order, what cleanup did, how long it took."""

    url: str
    checks: list[Check] = field(default_factory=list)
    cleanup: list[str] = field(default_factory=list)  # one line per resource removed or kept
    duration_s: float = 0.0
    interrupted: bool = False
    #: When the server refused the credential on the run's first request: its status and
    #: detail ("401: ..."); the first check failed saying so and the rest were skipped.
    refused: str = ""

    def count(self, status: Status) -> int:
        return sum(1 for c in self.checks if c.status == status)

    @property
    def passed(self) -> int:
        return self.count("pass")

    @property
    def failed(self) -> int:
        return self.count("fail")

    @property
    def skipped(self) -> int:
        return self.count("skip")

    def summary(self) -> str:
        """Issue 15's summary line."""
        return f"check: {self.passed} passed, {self.failed} failed, {self.skipped} skipped"

    def to_json(self) -> dict[str, Any]:
        """Issue 15's ``--json`` document (plus the cleanup lines and the time taken)."""
        return {
            "url": self.url,
            "checks": [c.to_json() for c in self.checks],
            "passed": self.passed,
            "failed": self.failed,
            "skipped": self.skipped,
            "cleanup": list(self.cleanup),
            "duration_s": round(self.duration_s, 2),
            "credential_refused": self.refused or None,
        }
