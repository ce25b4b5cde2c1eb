"""Fault injection: rules that make the server misbehave on purpose. The engine that decides,
request by request, whether one fires is ``core/fault_engine.py`` (:class:`FaultEngine`).

A :class:`FaultRule` says *what to match* (method, path glob relative to the SCIM base, Okta
step, a probability, the next N matching requests, or a token-bucket rate limit) and *what to
do* (a status with a SCIM Error body and ``Retry-After`` as seconds / HTTP-date / absent,
latency, dropping the connection, an empty 201 to a create, a 501).
:func:`parse_fault_spec` reads the same rules from the command line's ``--fault SPEC``;
:data:`PRESETS` are the named one-click scenarios (``--fault-preset NAME``).

Why these effects (OKTA.md, "Errors, rate limits and retries"): Okta honours ``Retry-After``
on a 429 only as an integer number of seconds; a missing header, an HTTP-date or anything
else makes it wait 5 minutes, each further 429 doubles the wait, and after 10 attempts the
task fails. A 5xx is not retried. Okta closes the socket after 60 s, reports "Create new user
returned empty user" for an empty 201, and does not fall back to PUT when PATCH gets a 501.

Decisions made here (the integrator and the GUI rely on them):

* **Paths** are matched case-sensitively with :func:`fnmatch.fnmatchcase` against the request
  path relative to the SCIM base (``/Users/abc``), without the query string. A trailing ``/``
  is ignored on both sides, so ``path=/Users`` matches ``/Users`` and ``/Users/`` but *not*
  ``/Users/abc`` (use ``/Users*`` or ``/Users/*`` for those). A leading base (``/scim/v2``)
  written in a rule is removed, and a missing leading ``/`` is added.
* **Steps** are Okta step ids from ``core/okta.py``, matched as case-insensitive globs; a rule
  with a step never matches a request without one.
* **Statuses** are 400-599 only (a fault is an error; the empty 201 is ``action=empty``).
* **Retry-After**: ``None`` (unset) means *no header* for a fixed-status rule, and the computed
  number of seconds until the next token for a rate-limit rule; ``"none"`` always omits it;
  ``"<n>"`` always sends ``n``; ``"date"`` sends an RFC 7231 §7.1.1.1 IMF-fixdate: for a rate
  limit, the moment the next token arrives; otherwise :data:`DATE_RETRY_SECONDS` from now.
* **Rate limits** are a firing *condition*, like a probability: a matching request takes a
  token; with a token it passes on (to later rules, then normal serving), without one the rule
  fires. The effect is the rule's status (default 429), or its action.
* **First match wins**: rules are tried in order and the first one that matches *and fires*
  decides, including a latency-only rule (the request is then served normally after the
  delay, and later rules are not consulted).
* A **count** is used up only when the rule fires; an exhausted rule no longer matches.
* The random source is drawn from only for a matching rule with probability below 1.
* ``action=empty`` applies only to creates (``POST`` to a collection such as ``/Users``); for
  any other request the rule does not match.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase, translate
from typing import Any

__all__ = [
    "ACTIONS",
    "DATE_RETRY_SECONDS",
    "MAX_LATENCY_MS",
    "PRESETS",
    "SCIM_BASE",
    "FaultRequest",
    "FaultRule",
    "FaultSpecError",
    "Preset",
    "get_preset",
    "parse_fault_spec",
    "relative_path",
]

#: The conventional SCIM base path Okta appends ``/Users`` and ``/Groups`` to (OKTA.md).
SCIM_BASE = "/scim/v2"
#: What ``action`` may be.
ACTIONS = ("drop", "empty", "not_implemented")
#: ``retry_after=date`` on a rule that is not a rate limit: the date this many seconds ahead.
#: (Okta ignores the value anyway: any HTTP-date means "wait 5 minutes", OKTA.md.)
DATE_RETRY_SECONDS = 60
#: Longest latency a rule may add (10 minutes; Okta itself gives up after 60 s, OKTA.md).
MAX_LATENCY_MS = 600_000

_METHOD_RE = re.compile(r"^[A-Z]+$")
#: The methods a request can have when faults are decided: the server answers any other
#: method 405 before faults are asked (server/endpoints.py, _KNOWN_METHODS), so a rule naming
#: one could never fire.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_COLLECTION_NOT_CREATE = frozenset({"Bulk", ".search"})


class FaultSpecError(ValueError):
    """A fault rule or ``--fault`` spec is invalid; the message is one line naming the key."""


def _fail(message: str) -> FaultSpecError:
    return FaultSpecError(f"fault spec: {message}")


# --- rules ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FaultRule:
    """One fault: what to match and what to do. Validated (and normalised) on construction,
    so rules built by the GUI or in code obey the same rules as parsed ones."""

    # what to match (None = any)
    method: str | None = None  # upper-case; "GET|PUT" = any of
    path: str | None = None  # fnmatch glob relative to the SCIM base, e.g. "/Users*"
    step: str | None = None  # Okta step id glob, e.g. "push_group_*"
    probability: float = 1.0  # 0 < p <= 1
    count: int | None = None  # fire for the next N matching requests only
    # what to do
    status: int | None = None  # 400-599, answered with a SCIM Error body
    retry_after: str | None = None  # None | "none" | "date" | "<int seconds>"
    latency_ms: int = 0  # delay before answering (or before serving normally)
    action: str | None = None  # "drop" | "empty" | "not_implemented"
    rate: float | None = None  # token bucket: requests per second ...
    burst: int | None = None  # ... with this capacity (default max(1, ceil(rate)))
    per_client: bool = False  # one bucket per client address instead of one overall
    name: str = ""  # label for logs and the GUI

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise through object.__setattr__
        set_(self, "method", _norm_method(self.method))
        set_(self, "path", _norm_path(self.path))
        if self.step is not None:
            step = self.step.strip()
            if not step:
                raise _fail("step must not be empty")
            _check_glob("step", step)
            set_(self, "step", step)
        set_(self, "name", (self.name or "").strip())
        if self.action is not None:
            action = self.action.strip().lower().replace("-", "_")
            if action not in ACTIONS:
                raise _fail(f"action must be one of {', '.join(ACTIONS)}, got {self.action!r}")
            set_(self, "action", action)
        if self.retry_after is not None:
            set_(self, "retry_after", _norm_retry_after(self.retry_after))

        # Ranges (bool is an int: refuse it where a number is meant).
        if self.status is not None and (
            isinstance(self.status, bool) or not 400 <= self.status <= 599
        ):
            raise _fail(f"status must be an HTTP error status 400-599, got {self.status!r}")
        if not (0.0 < self.probability <= 1.0):  # also refuses NaN
            raise _fail(f"probability must be above 0 and at most 1, got {self.probability!r}")
        if self.count is not None and (isinstance(self.count, bool) or self.count < 1):
            raise _fail(f"count must be at least 1, got {self.count!r}")
        if isinstance(self.latency_ms, bool) or not 0 <= self.latency_ms <= MAX_LATENCY_MS:
            raise _fail(f"latency_ms must be 0-{MAX_LATENCY_MS}, got {self.latency_ms!r}")
        if self.rate is not None and not (0.0 < self.rate < math.inf):
            raise _fail(f"rate must be a positive number of requests per second, got {self.rate!r}")
        if self.burst is not None and (isinstance(self.burst, bool) or self.burst < 1):
            raise _fail(f"burst must be at least 1, got {self.burst!r}")

        # Combinations.
        if (
            self.status is None
            and self.action is None
            and self.rate is None
            and not self.latency_ms
        ):
            raise _fail("a rule needs an effect: status, latency_ms, action or rate")
        if self.action is not None and self.status is not None:
            raise _fail(
                f"action={self.action} cannot be combined with status "
                "(drop sends nothing, empty is 201, not_implemented is 501)"
            )
        if self.rate is None:
            if self.burst is not None:
                raise _fail("burst needs rate")
            if self.per_client:
                raise _fail("per_client needs rate")
        elif self.probability < 1.0:
            raise _fail("probability cannot be combined with rate")
        if self.retry_after is not None and self.action in ("drop", "empty"):
            raise _fail(f"retry_after cannot be combined with action={self.action}")
        if self.retry_after is not None and self.effective_status is None:
            raise _fail("retry_after needs status or rate")
        if (
            self.action == "empty"
            and self.method is not None
            and "POST" not in self.method.split("|")
        ):
            raise _fail(f"action=empty only applies to POST creates, not method={self.method}")

    # --- derived ------------------------------------------------------------------------------
    @property
    def effective_status(self) -> int | None:
        """The status this rule answers when it fires; None: it drops or only delays."""
        if self.action == "not_implemented":
            return 501
        if self.action == "empty":
            return 201
        if self.action == "drop":
            return None
        if self.status is not None:
            return self.status
        if self.rate is not None:
            return 429  # RFC 6585 §4: Too Many Requests
        return None

    @property
    def effective_burst(self) -> int:
        """The limiter's bucket capacity (``burst`` or one second's worth of requests)."""
        if self.burst is not None:
            return self.burst
        return max(1, math.ceil(self.rate or 1.0))

    def matches(self, request: FaultRequest) -> bool:
        """Whether the filters (method, path, step, create-only for ``empty``) accept the
        request. Counts, probability and rate limits are the engine's business."""
        method = request.method.upper()
        if self.method is not None and method not in self.method.split("|"):
            return False
        path = _request_path(request.path)
        if self.action == "empty" and not (method == "POST" and _is_collection(path)):
            return False
        if self.path is not None and not _path_matches(self.path, path):
            return False
        if self.step is not None:
            if request.step is None:
                return False
            return fnmatchcase(request.step.lower(), self.step.lower())
        return True

    def describe(self) -> str:
        """Short human text, e.g. ``429 Retry-After: 30 on POST /Users (next 2)``; prefixed
        with ``name:`` when the rule has a name."""
        effect = self._effect_text()
        if self.latency_ms:
            delay = f"delay {self.latency_ms} ms"
            effect = f"{delay}, then {effect}" if effect else delay
        method = self.method or ("POST" if self.action == "empty" else None)
        scope = " ".join(p for p in (method, self.path) if p)
        if self.step is not None:
            scope = f"{scope} step {self.step}" if scope else f"step {self.step}"
        text = f"{effect} on {scope or 'every request'}"
        extras = []
        if self.probability < 1.0:
            extras.append(f"{self.probability * 100:g}%")
        if self.count is not None:
            extras.append(f"next {self.count}")
        if extras:
            text += f" ({', '.join(extras)})"
        return f"{self.name}: {text}" if self.name else text

    def _effect_text(self) -> str:
        if self.action == "drop":
            effect = "drop connection"
        elif self.action == "empty":
            effect = "empty 201"
        else:
            status = self.effective_status
            effect = "" if status is None else str(status)
        if self.rate is not None:
            scope = "per client" if self.per_client else "overall"
            effect += f" over {self.rate:g}/s (burst {self.effective_burst}, {scope})"
        if self.retry_after == "none":
            effect += " without Retry-After"
        elif self.retry_after == "date":
            effect += " Retry-After: <HTTP-date>"
        elif self.retry_after is not None:
            effect += f" Retry-After: {self.retry_after}"
        return effect


def _norm_method(method: str | None) -> str | None:
    if method is None:
        return None
    names = [m.strip().upper() for m in method.split("|")]
    if names == ["*"] or names == ["ANY"]:
        return None
    for name in names:
        if not _METHOD_RE.match(name):
            raise _fail(f"method must be HTTP methods like POST or GET|PUT, got {method!r}")
        if name not in METHODS:
            raise _fail(
                f"method {name} is not one this server answers, so the rule could never fire "
                f"(known: {', '.join(METHODS)}, or * for any)"
            )
    return "|".join(dict.fromkeys(names))


def _check_glob(key: str, pattern: str) -> None:
    """Refuse a glob that could never match, as fnmatch reads it: an unclosed ``[`` (taken as
    a literal ``[``, which request paths and step ids never hold unencoded), a class that
    matches nothing (``[z-a]``), or whitespace and control characters (a request path or step
    id never has them)."""
    n = len(pattern)
    i = 0
    while i < n:
        ch = pattern[i]
        if ch.isspace() or not ch.isprintable():
            raise _fail(
                f"{key} {pattern!r} contains {ch!r}, which a request {key} never has, so the "
                "rule could never fire"
            )
        if ch == "[":
            # The closing bracket exactly as fnmatch.translate finds it: a "]" right after
            # "[" or "[!" belongs to the set.
            j = i + 1
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                raise _fail(
                    f"{key} {pattern!r} has an unclosed '[' at position {i + 1} (a glob set "
                    "is [abc] or [a-z]; [[] is a literal '[')"
                )
            if "(?!)" in translate(pattern[i : j + 1]):
                raise _fail(
                    f"{key} {pattern!r} has a set that matches no character: "
                    f"{pattern[i : j + 1]!r} (ranges go low to high, e.g. [a-z])"
                )
            i = j
        i += 1


def _norm_path(path: str | None) -> str | None:
    if path is None:
        return None
    path = path.strip()
    if not path:
        raise _fail("path must not be empty")
    if path == SCIM_BASE or path.startswith(SCIM_BASE + "/"):
        path = path[len(SCIM_BASE) :] or "/"
    if path[0] not in "/*?[":
        path = "/" + path
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    _check_glob("path", path)
    return path


def _norm_retry_after(value: str) -> str:
    text = str(value).strip().lower()
    if text in ("none", "date"):
        return text
    if text.isdigit():  # RFC 7231 §7.1.3: delay-seconds = 1*DIGIT
        return str(int(text))
    raise _fail(f"retry_after must be seconds, 'date' or 'none', got {value!r}")


def _request_path(path: str) -> str:
    """The request path as rules see it: no query string, no trailing slash."""
    path = path.split("?", 1)[0]
    return path.rstrip("/") or "/"


def _path_matches(pattern: str, path: str) -> bool:
    return fnmatchcase(path, pattern)


def _is_collection(path: str) -> bool:
    """A create target: ``POST /Users`` or ``/Groups`` (RFC 7644 §3.3), one segment."""
    parts = path.strip("/").split("/")
    return len(parts) == 1 and parts[0] != "" and parts[0] not in _COLLECTION_NOT_CREATE


def relative_path(url_path: str, base: str = SCIM_BASE) -> str:
    """The request path relative to the SCIM base (``/scim/v2/Users/x`` -> ``/Users/x``).

    A path outside the base is returned unchanged, so ``/Users*`` rules cannot match it."""
    url_path = url_path.split("?", 1)[0]
    base = base.rstrip("/")
    if base and (url_path == base or url_path.startswith(base + "/")):
        return url_path[len(base) :] or "/"
    return url_path


# --- parsing ----------------------------------------------------------------------------------
_KNOWN_KEYS = (
    "status",
    "retry_after",
    "method",
    "path",
    "step",
    "probability",
    "count",
    "latency_ms",
    "action",
    "rate",
    "burst",
    "per_client",
    "name",
)
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def _int(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _fail(f"{key} must be a whole number, got {value!r}") from None


def _float(key: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise _fail(f"{key} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise _fail(f"{key} must be a finite number, got {value!r}")
    return number


def _probability(value: str) -> float:
    if value.endswith("%"):
        return _float("probability", value[:-1].strip()) / 100.0
    return _float("probability", value)


def _bool(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _fail(f"{key} must be true or false, got {value!r}")


def parse_fault_spec(text: str) -> FaultRule:
    """Read one rule from ``key=value,key=value`` text (the command line's ``--fault``).

    Keys: ``status``, ``retry_after`` (seconds, ``date`` or ``none``), ``method``, ``path``,
    ``step``, ``probability`` (0-1 or ``20%``), ``count``, ``latency_ms``, ``action`` (``drop``,
    ``empty``, ``not_implemented``), ``rate``, ``burst``, ``per_client`` (true/false) and
    ``name``. Whitespace around tokens is ignored. Raises :class:`FaultSpecError` with a
    one-line message naming the bad key or value.
    """
    if not text or not text.strip():
        raise _fail("empty; expected key=value pairs such as status=503,path=/Groups*")
    values: dict[str, str] = {}
    for token in text.split(","):
        token = token.strip()
        if not token:
            raise _fail(f"empty entry in {text.strip()!r} (stray comma?)")
        key, sep, value = token.partition("=")
        key = key.strip().lower().replace("-", "_")
        value = value.strip()
        if not sep:
            raise _fail(f"{token!r} is not key=value")
        if not key:
            raise _fail(f"{token!r} has no key")
        if key not in _KNOWN_KEYS:
            close = difflib.get_close_matches(key, _KNOWN_KEYS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise _fail(f"unknown key {key!r} ({hint}known: {', '.join(_KNOWN_KEYS)})")
        if key in values:
            raise _fail(f"duplicate key {key!r}")
        if not value and key != "name":
            raise _fail(f"{key} needs a value")
        values[key] = value

    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key in ("status", "count", "latency_ms", "burst"):
            kwargs[key] = _int(key, value)
        elif key == "rate":
            kwargs[key] = _float(key, value)
        elif key == "probability":
            kwargs[key] = _probability(value)
        elif key == "per_client":
            kwargs[key] = _bool(key, value)
        else:  # strings: normalised and checked by FaultRule itself
            kwargs[key] = value
    return FaultRule(**kwargs)


# --- presets ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Preset:
    """A named scenario: ``--fault-preset NAME`` and a one-click switch in the window."""

    name: str
    title: str
    description: str  # one sentence: what Okta does in response (OKTA.md)
    rules: tuple[FaultRule, ...]


def _preset(name: str, title: str, description: str, **rule: Any) -> Preset:
    return Preset(name, title, description, (FaultRule(name=name, **rule),))


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        _preset(
            "okta-rate-limit",
            "Okta rate limit (429, Retry-After: 60)",
            "Every request gets 429 with Retry-After: 60; Okta pauses the task, retries after "
            "the 60 seconds, doubles the wait on each further 429 and fails the task after 10 "
            "attempts.",
            status=429,
            retry_after="60",
        ),
        _preset(
            "retry-after-date",
            "429 with Retry-After as an HTTP-date",
            "Every request gets 429 with Retry-After as an HTTP-date; Okta honours only integer "
            "seconds, so it waits 5 minutes before retrying (doubling on each further 429, up "
            "to 10 attempts).",
            status=429,
            retry_after="date",
        ),
        _preset(
            "429-no-retry-after",
            "429 without Retry-After",
            "Every request gets 429 with no Retry-After header; Okta waits 5 minutes before "
            "retrying (doubling on each further 429, up to 10 attempts).",
            status=429,
            retry_after="none",
        ),
        _preset(
            "500-everything",
            "500 on everything",
            "Every request gets 500; Okta does not retry a 5xx, the task fails and an admin "
            "must retry it from the Tasks view.",
            status=500,
        ),
        _preset(
            "503-groups",
            "503 on /Groups only",
            "Requests to /Groups get 503 while users work; group push and group import tasks "
            "fail (Okta does not retry a 5xx) and wait for an admin to retry them.",
            status=503,
            path="/Groups*",
        ),
        _preset(
            "slow",
            "Slow server (2 s)",
            "Every answer is delayed by 2 seconds; Okta waits and carries on, so provisioning "
            "just runs slower.",
            latency_ms=2000,
        ),
        _preset(
            "near-timeout",
            "Close to Okta's timeout (55 s)",
            "Every answer is delayed by 55 seconds, just under the 60 s after which Okta closes "
            "the socket and fails the task.",
            latency_ms=55_000,
        ),
        _preset(
            "empty-create",
            "Empty 201 on create",
            "POST /Users is answered 201 with an empty body; Okta fails the task with "
            '"Create new user returned empty user".',
            action="empty",
            method="POST",
            path="/Users",
        ),
        _preset(
            "501-patch",
            "501 on PATCH",
            "PATCH is answered 501; Okta does not fall back to PUT, so deactivate, reactivate, "
            "password sync and group push membership tasks fail.",
            action="not_implemented",
            method="PATCH",
        ),
        _preset(
            "flaky",
            "Flaky (20 % 500)",
            "One request in five, at random, gets 500; Okta does not retry a 5xx, so those "
            "tasks fail and wait for an admin to retry them.",
            status=500,
            probability=0.2,
        ),
    )
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; :class:`FaultSpecError` naming the known ones otherwise."""
    try:
        return PRESETS[name.strip().lower()]
    except KeyError:
        raise FaultSpecError(
            f"fault preset: unknown {name!r} (known: {', '.join(PRESETS)})"
        ) from None


# --- the request a rule matches ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FaultRequest:
    """What the engine sees of a request."""

    method: str
    path: str  # relative to the SCIM base, e.g. "/Users/abc" (see relative_path)
    step: str | None  # the Okta step id, if classified before deciding
    client: str  # client address: the per-client limiter's key
