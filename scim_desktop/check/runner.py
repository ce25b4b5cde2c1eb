"""The checker's engine: sends Okta's requests (``okta_sim.OktaSimulator``, the one copy of
them) to the server under test, records every exchange redacted into the check that sent it,
judges each answer with ``core/okta_expect.expect`` (the knowledge the proxy and the coverage
checklist share) plus the checker's own checks, and removes what it created at the end.

Blocking, plain ``http.client``: run it on a worker thread in a window. :class:`Runner` takes a
callback per finished check (a progress bar) and a cancel flag (a ``threading.Event``); a
cancelled or interrupted run skips the checks left and still cleans up.
"""

from __future__ import annotations

import base64
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from scim_desktop.check.model import (
    MAX_REPORT_BODY,
    SUITES,
    Check,
    Finding,
    Report,
    RequestLog,
)
from scim_desktop.core.okta_expect import Problem, expect
from scim_desktop.core.okta_steps import OKTA_TIMEOUT_S
from scim_desktop.okta_sim import (
    OktaSimulator,
    Sent,
    SimResult,
    group_filter_path,
    resources_of,
    user_filter_path,
)
from scim_desktop.server.events import (
    escape_controls,
    redact_body,
    redact_headers,
    redact_url,
    scrub,
)

#: Every resource the checker creates starts with this, so it is recognisable (and removable).
PREFIX = "scim-desktop-check-"
#: A 429 is retried like Okta does (after an integer Retry-After), this many times at most, and
#: the checker waits at most this long each time (Okta itself waits up to minutes).
MAX_RETRIES = 3
MAX_RETRY_WAIT_S = 10.0
#: The statuses of a server that refuses the run's credential (RFC 9110 §15.5.2, §15.5.4).
REFUSED_STATUSES = (401, 403)
#: Why the checks after a refused credential are skipped (none of them could pass).
REFUSED_SKIP = "the server refused the credential"
#: The same, when the checker was given no credential to send.
NO_CREDENTIAL_SKIP = "the server asks for a credential and none was given"
#: Why a request was not sent once the credential was refused.
NOT_SENT = "not sent: the server refused the credential"
#: Why the check a cancel interrupted is skipped.
CANCELLED = "cancelled"


class Unreachable(Exception):
    """The server never answered (refused, unknown host, TLS failure, timeout)."""


class Cancelled(Exception):
    """The cancel flag was set (or Ctrl-C): the checks left are skipped."""


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """What ``scim-desktop check`` was asked (or the window's dialog)."""

    url: str
    token: str | None = None
    basic: tuple[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    suites: tuple[str, ...] = SUITES
    insecure: bool = False
    keep: bool = False
    timeout: float = OKTA_TIMEOUT_S
    domain: str = "example.com"

    def secrets(self) -> list[str]:
        """The credential texts, scrubbed from every text a report holds."""
        out = [self.token or ""]
        if self.basic:
            pair = f"{self.basic[0]}:{self.basic[1]}"
            out += [self.basic[1], base64.b64encode(pair.encode()).decode()]
        for value in self.headers.values():
            out += [value, value.split(" ", 1)[-1]]
        return [s for s in out if len(s) >= 4]


class OptionsError(ValueError):
    """What the checker was asked cannot be used. The text is the command line's usage error
    (``cli.options_from`` prints it); ``option`` names what is wrong ("url", "suite", "token",
    "basic" or "header") so a form can say it in its own words."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


def make_options(
    url: str,
    *,
    token: str | None = None,
    basic: str | tuple[str, str] | None = None,
    header: Iterable[str | tuple[str, str]] = (),
    suites: str | Iterable[str] = SUITES,
    insecure: bool = False,
    keep: bool = False,
) -> CheckOptions:
    """The one validation of what the checker is asked, for the command line and the window.

    ``basic`` is ``"USER:PASS"`` or a (user, password) pair; each ``header`` is ``"Name:
    value"`` or a (name, value) pair; ``suites`` a comma-separated text or names (run in
    SUITES' order whatever the order given). Raises :class:`OptionsError`.
    """
    url = url.strip()
    parts = urlsplit(url)  # the scheme comes back lower-cased
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OptionsError("url", f"URL must be an http:// or https:// SCIM base URL, not {url!r}")
    names = suites.split(",") if isinstance(suites, str) else suites
    chosen = [s.strip().lower() for s in names if s.strip()]
    unknown = [s for s in chosen if s not in SUITES]
    if unknown:
        raise OptionsError(
            "suite", f"--suite: unknown suite {unknown[0]!r}; choose from {', '.join(SUITES)}"
        )
    if not chosen:
        raise OptionsError("suite", "--suite: no suite named")
    # A space or a line break would not be one credential (and a line break in a header is
    # another header: RFC 9110 §5.5 forbids CR and LF in field values).
    if token is not None and (not token or any(c.isspace() for c in token)):
        raise OptionsError("token", "--token must be the bearer token alone (no spaces)")
    pair = None
    if basic is not None:
        if isinstance(basic, str):
            user, sep, password = basic.partition(":")
        else:
            (user, password), sep = basic, ":"
        if not sep or not user or ":" in user:  # RFC 7617 §2: the user-id holds no colon
            raise OptionsError("basic", "--basic must be USER:PASS")
        pair = (user, password)
    headers: dict[str, str] = {}
    for item in header:
        if isinstance(item, str):
            text, (name, sep, value) = item, item.partition(":")
        else:
            (name, value), sep = item, ":"
            text = f"{name}: {value}"
        name, value = name.strip(), value.strip()
        bad_name = not name or any(c.isspace() or c == ":" for c in name)
        if not sep or bad_name or any(c in "\r\n\0" for c in value):
            raise OptionsError("header", f'--header must be "Name: value", not {text!r}')
        headers[name] = value
    return CheckOptions(
        url=url.rstrip("/"),
        token=token,
        basic=pair,
        headers=headers,
        suites=tuple(s for s in SUITES if s in chosen),
        insecure=insecure,
        keep=keep,
    )


def ssl_context(insecure: bool) -> ssl.SSLContext:
    """The system store verifies the server's certificate; ``--insecure`` turns that off."""
    if not insecure:
        return ssl.create_default_context()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _Client(OktaSimulator):
    """Okta's requests, retried after a 429 the way Okta does (a shorter wait), and an
    unreachable server told apart from a bad answer."""

    answered = False
    #: Set once the server refused the run's credential: a request carrying it is not sent
    #: any more (it would be refused the same way, and each check would fail for the one
    #: reason). A request with its own Authorization (SPEC 11's deliberately wrong bearer,
    #: whose point is a 401) still goes out.
    refused = False

    def request(self, method: str, path: str, body: Any = None, **kw: Any) -> SimResult:
        if self.refused and kw.get("authorization") is None:
            if self.stop.is_set():
                raise InterruptedError("check cancelled")
            return SimResult(0, None, error=NOT_SENT)
        for attempt in range(MAX_RETRIES + 1):
            result = super().request(method, path, body, **kw)
            if result.status == 0 and not self.answered:
                hint = ""
                if "CERTIFICATE_VERIFY_FAILED" in result.error:
                    hint = " (a self-signed certificate? --insecure skips verification)"
                raise Unreachable(f"cannot reach {self.url('')}: {result.error}{hint}")
            self.answered = self.answered or result.status != 0
            wait = _retry_after(result)
            if result.status != 429 or wait is None or attempt == MAX_RETRIES:
                return result
            if self.stop.wait(min(wait, MAX_RETRY_WAIT_S)):
                raise InterruptedError("check cancelled")
        return result  # pragma: no cover (the loop returns)


def _retry_after(result: SimResult) -> float | None:
    """OKTA.md: Okta honours Retry-After only as an integer number of seconds."""
    value = next((v for k, v in result.headers.items() if k.lower() == "retry-after"), None)
    return float(value) if value is not None and value.strip().isdigit() else None


class Runner:
    """One run of the checks. ``on_check`` is called with each finished :class:`Check` (on the
    runner's thread); setting ``cancel`` stops the run at the next request."""

    def __init__(
        self,
        options: CheckOptions,
        *,
        on_check: Callable[[Check], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.options = options
        self.on_check = on_check
        self.cancel = cancel or threading.Event()
        self.tag = PREFIX + secrets.token_hex(4)
        self.report = Report(options.url)
        self._secrets = options.secrets()
        self._current: Check | None = None
        self._last: Sent | None = None
        self._sent: list[Sent] = []  # the current check's exchanges, unredacted, for judging
        #: The first answer (not a 429) decides whether the server takes the credential.
        self._decided = False
        #: When it did not: the check whose request was refused (it fails, once, saying so),
        #: and the index of that answer in its requests.
        self._refused_check: Check | None = None
        self._refused_at = 0
        self.sim = self._client(self.cancel)
        #: What this run created: ids it was given, and the names it created (a server that
        #: answers an empty 201 still stored something: cleanup looks the names up).
        self.user_ids: dict[str, str] = {}
        self.group_ids: dict[str, str] = {}
        self.user_names: list[str] = []
        self.group_names: list[str] = []

    def _client(self, stop: threading.Event) -> _Client:
        o = self.options
        return _Client(
            o.url,
            token=o.token,
            basic=o.basic,
            headers=o.headers,
            domain=o.domain,
            stop=stop,
            timeout=o.timeout,
            governance=True,
            ssl_context=ssl_context(o.insecure) if o.url.lower().startswith("https") else None,
            on_exchange=self._record,
        )

    # --- names ---------------------------------------------------------------------------------
    def user_name(self, what: str) -> str:
        name = f"{self.tag}-{what}@{self.options.domain}"
        self.user_names.append(name)
        return name

    def group_name(self, what: str) -> str:
        name = f"{self.tag}-{what}"
        self.group_names.append(name)
        return name

    def track(self, result: SimResult, kind: str = "user") -> str | None:
        """Remember the id a create answered (for cleanup); returns it."""
        rid = result.body.get("id") if isinstance(result.body, dict) else None
        if 200 <= result.status < 300 and isinstance(rid, str) and rid:
            name = result.body.get("userName" if kind == "user" else "displayName")
            (self.user_ids if kind == "user" else self.group_ids)[rid] = str(name or rid)
            return rid
        return None

    # --- recording -----------------------------------------------------------------------------
    def _record(self, sent: Sent) -> None:
        self._last = sent
        if self._current is not None:
            self._current.requests.append(self.redact(sent))
            self._sent.append(sent)
            if not self._decided and sent.result.status not in (0, 429):
                self._decided = True
                if sent.result.status in REFUSED_STATUSES:
                    self._refuse(self._current, sent.result)

    # --- a refused credential ------------------------------------------------------------------
    def _refuse(self, check: Check, result: SimResult) -> None:
        """The server refused the first request the run sent with its credential: a mistyped
        token, the wrong kind of credential, or none given. Every later request carrying it
        would be refused the same way, so none is sent: this check fails once saying so, and
        the others are skipped (:meth:`finish`, :meth:`skip`)."""
        self._refused_check = check
        self._refused_at = len(check.requests) - 1
        self.report.refused = self.scrub(f"{result.status}: {_refusal_detail(result)}")
        self.sim.refused = True

    @property
    def refused(self) -> bool:
        """True once the server refused the credential (see :meth:`_refuse`)."""
        return self._refused_check is not None

    def _has_credential(self) -> bool:
        o = self.options
        return bool(o.token or o.basic or o.headers)

    def _refusal_finding(self) -> Finding:
        refused = self.report.refused
        if self._has_credential():
            what = f"the server refused the credential ({refused})"
            every = "every request it sends with this credential is refused the same way"
        else:
            what = f"the server asks for a credential and none was given ({refused})"
            every = "the server takes no request without the credential it expects"
        return Finding(
            what,
            "Okta's Test API Credentials fails with this answer (the admin cannot save the "
            f"integration) and Okta cannot provision: {every}",
            "Check the credential given to the checker: --token TOKEN (the token alone), "
            '--basic USER:PASS or --header "Name: value" (in the window, the Credential '
            "choice and its fields). For HTTP Header auth Okta sends `Authorization: Bearer "
            "<token>`, so give that token with --token. If the credential is the right one, "
            "the server must accept it on every endpoint (RFC 6750 §2.1 for a bearer token, "
            "RFC 7617 for Basic).",
            "fails",
            "okta",
            self._refused_at,
        )

    def _refused_skip(self) -> str:
        return REFUSED_SKIP if self._has_credential() else NO_CREDENTIAL_SKIP

    def sent_in(self, check: Check) -> list[Sent]:
        """The exchanges of the current check as sent and received (not redacted)."""
        return list(self._sent) if check is self._current else []

    def judge_as(self, check: Check, steps: Iterable[str]) -> list[Finding]:
        """Judge the check's exchanges so far, in order, as ``steps``."""
        findings: list[Finding] = []
        for sent, step in zip(self.sent_in(check), steps, strict=False):
            self._last = sent
            findings += self.judge(step)
        return findings

    def redact(self, sent: Sent) -> RequestLog:
        """An exchange as a report may hold it: credentials, passwords and secrets gone
        (server/events.py's redaction, the same the server's own records get)."""
        found: list[str] = list(self._secrets)
        body = redact_body(sent.body.encode(), found) if sent.body else ""
        answer = redact_body(sent.result.text.encode(), found) if sent.result.text else ""
        if len(answer) > MAX_REPORT_BODY:
            answer = answer[:MAX_REPORT_BODY] + f"… [{len(answer) - MAX_REPORT_BODY} more]"
        return RequestLog(
            method=sent.method,
            url=redact_url(sent.url),
            headers=redact_headers(sent.headers),
            body=scrub(body, found) or "",
            status=sent.result.status,
            response_body=scrub(answer, found) or "",
            duration_ms=sent.result.duration_s * 1000,
            error=scrub(sent.result.error, found) or "",
        )

    def scrub(self, text: str) -> str:
        return scrub(text, self._secrets) or ""

    # --- checks --------------------------------------------------------------------------------
    def begin(self, suite: str, name: str) -> Check:
        check = Check(name=name, suite=suite, started=time.monotonic())
        self._current = check
        self._sent = []
        return check

    def discard(self, check: Check) -> None:
        """Forget a check begun for a step that never came."""
        if self._current is check:
            self._current = None

    def finish(self, check: Check, findings: Iterable[Finding], passed: str = "") -> Check:
        """Close a check: failed when anything was found, passed otherwise (``passed`` is its
        detail). Once the credential was refused, the refused check fails with that one
        finding, and a check that sent nothing (its requests were held back) is skipped."""
        if check is self._refused_check:
            findings = [self._refusal_finding()]
        elif self.refused and not check.requests:
            return self.skip(check.suite, check.name, self._refused_skip(), check)
        found: list[Finding] = []
        last = len(check.requests) - 1 if check.requests else None
        for g in findings:
            # Scrubbed: a server may echo a credential in an error detail.
            f = replace(
                g,
                what=self.scrub(g.what),
                okta_effect=self.scrub(g.okta_effect),
                fix=self.scrub(g.fix),
                request=g.request if g.request is not None else last,
            )
            # The same answer twice (two list pages) is said once.
            if all((f.what, f.okta_effect) != (h.what, h.okta_effect) for h in found):
                found.append(f)
        check.findings = found
        if found:
            check.status = "fail"
            check.detail = "; ".join(_unique(f.what for f in found))
            check.okta_effect = "; ".join(_unique(_effect_text(f) for f in found))
            check.fix = " ".join(_unique(f.fix for f in found))
        else:
            check.status = "pass"
            check.detail = self.scrub(passed or self._answered_text(check))
        return self._done(check)

    def skip(self, suite: str, name: str, why: str, check: Check | None = None) -> Check:
        if check is not None and check is self._refused_check:
            # A suite skipping on the refused answer (entitlements: /ResourceTypes answered
            # 401) would hide why: it is the credential's failure.
            return self.finish(check, [])
        if self.refused and why != CANCELLED:
            why = self._refused_skip()  # whatever else the suite would say follows from it
        check = check or Check(name=name, suite=suite, started=time.monotonic())
        check.status, check.detail = "skip", why
        return self._done(check)

    def _done(self, check: Check) -> Check:
        check.duration_s = max(0.0, time.monotonic() - check.started)
        if self._current is check:
            self._current = None
        self.report.checks.append(check)
        if self.on_check is not None:
            self.on_check(check)
        return check

    @staticmethod
    def _answered_text(check: Check) -> str:
        return ", ".join(f"{r.method} {r.status}" for r in check.requests) or "no request"

    # --- judging -------------------------------------------------------------------------------
    def judge(
        self,
        step: str,
        *,
        duplicate: bool = False,
        explanation: str | None = None,
        spec: bool = False,
    ) -> list[Finding]:
        """What Okta makes of the last answer, for the step it plays (core/okta_steps ids)."""
        sent = self._last
        if sent is None:
            return []
        parts = urlsplit(sent.url)
        res = sent.result
        problems = expect(
            step,
            sent.method,
            parts.query,
            sent.body,
            res.status,
            res.text,
            path=parts.path,
            explanation=explanation,
            duplicate=duplicate,
            # A timeout is judged as one (Okta closes the socket after 60 s), not a drop.
            duration_s=res.duration_s,
        )
        at = next((i for i, x in enumerate(self._sent) if x is sent), None)
        return [replace(_finding(p, spec or step == "spec_test"), request=at) for p in problems]

    @property
    def last(self) -> SimResult:
        assert self._last is not None
        return self._last.result

    # --- the run -------------------------------------------------------------------------------
    def run(self) -> Report:
        """Every suite asked for, then cleanup. Raises :class:`Unreachable` when the server
        never answered (nothing was created then); KeyboardInterrupt is re-raised after
        cleanup, with the report kept in :attr:`report`."""
        from scim_desktop.check.suites import SUITE_FUNCTIONS

        started = time.monotonic()
        try:
            for suite in self.options.suites:
                try:
                    SUITE_FUNCTIONS[suite](self)
                except InterruptedError:
                    raise Cancelled() from None
        except (Cancelled, KeyboardInterrupt) as exc:
            self.report.interrupted = True
            if self._current is not None:
                self.skip(self._current.suite, self._current.name, CANCELLED, self._current)
            self.cleanup()
            self.report.duration_s = time.monotonic() - started
            if isinstance(exc, KeyboardInterrupt):
                raise
            return self.report
        except Unreachable:
            self.sim.close()
            raise
        except BaseException:
            self.cleanup()
            raise
        self.cleanup()
        self.report.duration_s = time.monotonic() - started
        return self.report

    # --- cleanup -------------------------------------------------------------------------------
    def cleanup(self) -> None:
        """Delete what this run created (unless ``keep``): groups, then users. Okta never
        deletes users, but a checker should not leave them: DELETE /Users/{id}, and when the
        server refuses it, a deactivation (said in the report)."""
        self._current = None
        self.sim.close()
        if self.refused:
            # Decided on the run's first answer: nothing was created before it, and nothing
            # carrying the credential was sent after it (the lookups would be refused too).
            return
        client = self._client(threading.Event())  # a cancelled run still cleans up
        client.answered = True
        lines = self.report.cleanup
        try:
            groups = dict(self.group_ids)
            users = dict(self.user_ids)
            for name in self.group_names:
                groups.update(_found(client, group_filter_path(name), "displayName", name))
            for name in self.user_names:
                users.update(_found(client, user_filter_path(name), "userName", name))
            if self.options.keep:
                lines += [f"kept group {n} ({i})" for i, n in groups.items()]
                lines += [f"kept user {n} ({i})" for i, n in users.items()]
                return
            for gid, name in groups.items():
                res = client.delete_group(gid)
                ok = res.status in (200, 204, 404)
                lines.append(
                    f"deleted group {name}"
                    if ok
                    else f"could not delete group {name} ({gid}): DELETE answered {res.status}"
                )
            for uid, name in users.items():
                res = client.delete_user(uid)  # the id as one path segment
                if res.status in (200, 204, 404):
                    lines.append(f"deleted user {name}")
                    continue
                off = client.patch_user(uid, [{"op": "replace", "value": {"active": False}}])
                lines.append(
                    f"user {name}: the server refused DELETE /Users/{{id}} ({res.status}); "
                    + ("deactivated it instead" if off.status in (200, 204) else "left it")
                )
        except InterruptedError:  # pragma: no cover (its own flag is never set)
            pass
        finally:
            client.close()


def _refusal_detail(result: SimResult) -> str:
    """A refusal's reason in a few words: the SCIM Error's detail (RFC 7644 §3.12), else the
    start of the body, else the status's phrase."""
    detail = result.body.get("detail") if isinstance(result.body, dict) else None
    text = detail if isinstance(detail, str) and detail.strip() else result.text
    text = " ".join(escape_controls(text).split())
    if not text:
        try:
            return HTTPStatus(result.status).phrase
        except ValueError:
            return "no detail"
    return text if len(text) <= 160 else text[:159] + "…"


def _found(client: OktaSimulator, path: str, attr: str, name: str) -> dict[str, str]:
    """Ids of the resources named ``name`` (an exact, case-insensitive match), by filter."""
    return {
        r["id"]: name
        for r in resources_of(client.request("GET", path))
        if isinstance(r.get("id"), str) and str(r.get(attr, "")).lower() == name.lower()
    }


def _finding(problem: Problem, spec: bool) -> Finding:
    """A Problem of core/okta_expect as a report finding, saying whose rule it is: the
    problem's own ``source`` (a Runscope assertion, or Okta's client where it is stricter than
    Runscope); otherwise Okta's client, or the SPEC test for a check of that suite."""
    source = _FINDING_SOURCE.get(problem.source, "spec" if spec else "okta")
    return Finding(problem.what, problem.okta_effect, problem.fix, problem.effect, source)


#: A Problem's source (core/okta_expect_answers.Source) as a Finding's, where it decides it.
_FINDING_SOURCE = {"runscope": "spec", "strict": "strict"}


#: How a finding's source is named in a report line.
SOURCE_TEXT = {
    "okta": "Okta's client",
    "tooling": "Okta's tests and OIN review",
    "spec": "Runscope SPEC test",
    "strict": "Okta's client, stricter than Runscope",
    "check": "checker",
}


def source_text(f: Finding) -> str:
    """Whose rule a finding is, in words: a ``tooling`` problem of a lifecycle step is one
    Okta's client copes with but its test suites or the OIN review flag."""
    key = "tooling" if f.source == "okta" and f.effect == "tooling" else f.source
    return SOURCE_TEXT.get(key, key)


def _effect_text(f: Finding) -> str:
    return f"[{source_text(f)}] {f.okta_effect}"


def _unique(texts: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for t in texts:
        if t and t not in seen:
            seen.append(t)
    return seen


def own(what: str, okta_effect: str, fix: str, source: str = "check") -> Finding:
    """A finding of the checker's own (or a Runscope assertion, ``source="spec"``)."""
    return Finding(what, okta_effect, fix, "fails", source)
