"""The fault engine: decides, request by request, whether a fault rule fires (the rules, their
``--fault`` spec and the presets are in ``core/faults.py``, with the decisions the rules follow).

:class:`FaultEngine` is pure: time comes from injected clocks and randomness from a seedable
:class:`random.Random`, so a run with the same seed and the same requests repeats exactly. It
never sleeps or touches a socket; the server turns a :class:`Decision` into a delay and a
response (or a closed connection) before any SCIM code runs.

Threads: the engine is used on the server's IOLoop thread. None of its methods is
thread-safe, :meth:`FaultEngine.set_rules` included: other threads (the GUI) must call them
through ``runner.call`` so they run on the loop thread (DESIGN.md, "Threads and ownership").
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from scim_desktop.core.errors import ERROR_SCHEMA
from scim_desktop.core.faults import DATE_RETRY_SECONDS, FaultRequest, FaultRule

__all__ = ["Decision", "FaultEngine", "RuleState"]

#: Per-client limiter buckets kept before full (i.e. idle) ones are forgotten.
_MAX_BUCKETS = 4096
#: Slack for float rounding in token arithmetic (0.1 * 10 is not quite 1.0).
_EPS = 1e-9


# --- the engine -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Decision:
    """What the server must do: wait ``latency_ms``, then drop the connection (``drop``),
    answer ``status`` with ``headers`` and ``body`` (no body at all when ``empty``), or
    serve the request normally (``status`` None and not ``drop``)."""

    rule_index: int
    rule: FaultRule
    latency_ms: int
    status: int | None
    headers: dict[str, str]
    body: dict[str, Any] | None
    drop: bool = False
    empty: bool = False
    description: str = ""  # for the request record's ``fault`` field


@dataclass(frozen=True, slots=True)
class RuleState:
    """A rule with its counters, for the GUI."""

    rule: FaultRule
    fired: int
    remaining: int | None  # None: no count


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


@dataclass(slots=True)
class _Runtime:
    fired: int = 0
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    prune_at: int = _MAX_BUCKETS  # bucket count that triggers forgetting idle clients


class FaultEngine:
    """Decides, per request, whether a fault rule fires (first matching rule that fires wins).

    Not thread-safe: use it on the server's IOLoop thread only; other threads change rules
    through ``runner.call`` (DESIGN.md, "Threads and ownership").
    """

    def __init__(
        self,
        rules: Iterable[FaultRule] = (),
        *,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        """``clock`` drives the rate limiters (seconds, monotonic); ``wall_clock`` (Unix
        seconds) dates ``Retry-After`` HTTP-dates; ``seed`` seeds the random source (or pass
        a ``rng`` of your own)."""
        self._rng = rng if rng is not None else random.Random(seed)
        self._clock = clock
        self._wall_clock = wall_clock
        self._rules: list[FaultRule] = []
        self._runtime: list[_Runtime] = []
        self.set_rules(rules)

    # --- rules (loop thread only) -------------------------------------------------------------
    def set_rules(self, rules: Iterable[FaultRule]) -> None:
        """Replace every rule; counters and limiter buckets start afresh (the random source
        carries on). Not thread-safe: call it on the loop thread (``runner.call``)."""
        new = list(rules)
        for rule in new:
            if not isinstance(rule, FaultRule):
                raise TypeError(f"expected FaultRule, got {type(rule).__name__}")
        self._rules = new
        self._runtime = [_Runtime() for _ in new]

    def add_rule(self, rule: FaultRule) -> int:
        """Append a rule (tried after the others); returns its index. Loop thread only."""
        if not isinstance(rule, FaultRule):
            raise TypeError(f"expected FaultRule, got {type(rule).__name__}")
        self._rules.append(rule)
        self._runtime.append(_Runtime())
        return len(self._rules) - 1

    def remove_rule(self, index: int) -> FaultRule:
        """Remove and return the rule at ``index`` (IndexError if none); the others keep their
        counters. Loop thread only."""
        rule = self._rules.pop(index)
        del self._runtime[index]
        return rule

    def clear(self) -> None:
        """Remove every rule. Loop thread only."""
        self.set_rules(())

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        return tuple(self._rules)

    def states(self) -> list[RuleState]:
        """Each rule with how often it fired and how many firings its count has left."""
        return [
            RuleState(
                rule,
                rt.fired,
                None if rule.count is None else max(0, rule.count - rt.fired),
            )
            for rule, rt in zip(self._rules, self._runtime, strict=True)
        ]

    @property
    def active(self) -> bool:
        """Whether any rule can still fire (a rule with its count used up cannot)."""
        return any(
            rule.count is None or rt.fired < rule.count
            for rule, rt in zip(self._rules, self._runtime, strict=True)
        )

    # --- deciding -----------------------------------------------------------------------------
    def decide(self, request: FaultRequest) -> Decision | None:
        """The fault for this request, or None to serve it normally.

        Rules are tried in order; the first that matches and fires decides. A rate-limit
        rule takes a token from a matching request and fires only when none is left; a rule
        with a probability draws from the random source only when it matches."""
        for index, (rule, rt) in enumerate(zip(self._rules, self._runtime, strict=True)):
            if rule.count is not None and rt.fired >= rule.count:
                continue
            if not rule.matches(request):
                continue
            wait: float | None = None
            if rule.rate is not None:
                wait = self._take_token(rule, rt, request.client)
                if wait is None:
                    continue  # within the rate: let the request through
            elif rule.probability < 1.0 and self._rng.random() >= rule.probability:
                continue
            rt.fired += 1
            return self._decision(index, rule, rt, wait)
        return None

    def _take_token(self, rule: FaultRule, rt: _Runtime, client: str) -> float | None:
        """Token bucket: None if the request may pass (a token was taken), else the seconds
        until the next token arrives."""
        assert rule.rate is not None
        now = self._clock()
        capacity = float(rule.effective_burst)
        key = client if rule.per_client else ""
        bucket = rt.buckets.get(key)
        if bucket is None:
            if len(rt.buckets) >= rt.prune_at:
                self._forget_full_buckets(rule, rt, now)
                # Many clients at once: scan again only after the map doubles (amortised O(1)).
                rt.prune_at = max(_MAX_BUCKETS, 2 * len(rt.buckets))
            bucket = rt.buckets[key] = _Bucket(capacity, now)
        else:
            elapsed = max(0.0, now - bucket.stamp)
            bucket.tokens = min(capacity, bucket.tokens + elapsed * rule.rate)
            bucket.stamp = now
        if bucket.tokens >= 1.0 - _EPS:
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            return None
        return (1.0 - bucket.tokens) / rule.rate

    @staticmethod
    def _forget_full_buckets(rule: FaultRule, rt: _Runtime, now: float) -> None:
        # A bucket that has refilled is the same as a fresh one: forgetting it changes nothing.
        assert rule.rate is not None
        capacity = rule.effective_burst
        rt.buckets = {
            key: b
            for key, b in rt.buckets.items()
            if b.tokens + max(0.0, now - b.stamp) * rule.rate < capacity - _EPS
        }

    def _decision(self, index: int, rule: FaultRule, rt: _Runtime, wait: float | None) -> Decision:
        status = rule.effective_status
        headers: dict[str, str] = {}
        notes = [f"rule {index + 1}"]
        if status is not None and status >= 400:
            retry = self._retry_after(rule, wait)
            if retry is not None:
                headers["Retry-After"] = retry
                if wait is not None or rule.retry_after == "date":
                    notes.append(f"Retry-After: {retry}")
        if rule.count is not None:
            notes.append(f"{rule.count - rt.fired} left")
        label = rule.describe()
        body = None
        if status is not None and status >= 400:
            body = {
                "schemas": [ERROR_SCHEMA],
                "status": str(status),  # RFC 7644 §3.12: status is a string
                "detail": _detail(rule, status, label),
            }
        return Decision(
            rule_index=index,
            rule=rule,
            latency_ms=rule.latency_ms,
            status=status,
            headers=headers,
            body=body,
            drop=rule.action == "drop",
            empty=rule.action == "empty",
            description=f"{label} [{', '.join(notes)}]",
        )

    def _retry_after(self, rule: FaultRule, wait: float | None) -> str | None:
        """The Retry-After value (RFC 7231 §7.1.3), or None for no header."""
        if rule.retry_after == "none":
            return None
        if rule.retry_after == "date":
            # RFC 7231 §7.1.1.1 IMF-fixdate; rounded up so it is never before the moment.
            ahead = wait if wait is not None else float(DATE_RETRY_SECONDS)
            return email.utils.formatdate(math.ceil(self._wall_clock() + ahead), usegmt=True)
        if rule.retry_after is not None:
            return rule.retry_after
        if wait is not None:
            # Integer seconds (the only form Okta honours), at least 1, rounded up so a client
            # that obeys it finds a token waiting.
            return str(max(1, math.ceil(wait - _EPS)))
        return None  # a fixed 429 without retry_after sends no header


def _detail(rule: FaultRule, status: int, label: str) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    why = ""
    if rule.rate is not None:
        scope = "from this client" if rule.per_client else "in total"
        why = (
            f"; more than {rule.rate:g} requests per second {scope} (burst {rule.effective_burst})"
        )
    return f"Injected fault: {status} {phrase}{why} (SCIM Desktop fault rule '{label}')"
