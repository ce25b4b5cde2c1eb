"""Okta insight: 429s and retries (OKTA.md, "Errors, rate limits and retries"). Okta's wait
after each 429 (:func:`retry_wait`) and the part of the classifier that recognises a retry of
a request answered 429 and notes the wait on the answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Any

from scim_desktop.core.okta_common import _Recent, _request_key, _State
from scim_desktop.core.okta_expect import rate_limited
from scim_desktop.core.okta_steps import (
    DEFAULT_RETRY_WAIT_S,
    MAX_ATTEMPTS,
    STEPS,
    OktaRequest,
    Step,
)

__all__ = ["retry_wait"]


@dataclass(slots=True)
class _Throttle:
    base: Step  # the step as first classified, without retry marks
    count: int  # 429 answers so far (attempts made)
    last_time: float
    wait: float  # what Okta waits after the last 429


def retry_wait(attempt: int, retry_after: str | None) -> tuple[float, str]:
    """Okta's wait after the ``attempt``-th 429 for one request, and why (OKTA.md, "Errors,
    rate limits and retries"): an integer ``Retry-After`` is honoured; a missing one, an
    HTTP-date or anything else not an integer means 5 minutes; each further 429 doubles it."""
    text = (retry_after or "").strip()
    if text.isascii() and text.isdigit():
        base, why = float(int(text)), f"Retry-After: {text} honoured"
    elif retry_after is None:
        base, why = DEFAULT_RETRY_WAIT_S, "no Retry-After, so 5 minutes"
    elif _is_http_date(text):
        base, why = (
            DEFAULT_RETRY_WAIT_S,
            "Retry-After is an HTTP-date, which Okta does not honour: 5 minutes",
        )
    else:
        base, why = DEFAULT_RETRY_WAIT_S, f"Retry-After {text!r} is not an integer: 5 minutes"
    if attempt > 1:
        why += f", doubled {attempt - 1} time{'s' if attempt > 2 else ''}"
    return base * 2 ** (attempt - 1), why


def _is_http_date(text: str) -> bool:
    try:
        parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return False
    return True


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.0005 else "under 1 ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{round(seconds)} s"
    if seconds < 7200:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours} h" + (f" {rest // 60} min" if rest >= 60 else "")


class _RetryRules(_State):
    """Retries of requests answered 429, remembered in ``_throttled`` (request key -> chain)."""

    _throttled: _Recent[tuple[Any, ...], _Throttle]

    def _expired(self, key: tuple[Any, ...], now: float) -> bool:
        entry = self._throttled.get(key, now)
        # Okta retries after entry.wait; allow for its scheduling (and a paused task) before
        # treating an identical request as a new one.
        return entry is None or now - entry.last_time > entry.wait * 2 + self.max_age_s

    def _throttle_for(self, req: OktaRequest) -> _Throttle | None:
        if not self._throttled:
            return None  # nothing answered 429 lately: skip building the key (a JSON dump)
        key = _request_key(req)
        if self._expired(key, req.time):
            return None
        return self._throttled.get(key, req.time)

    # --- 429 and retries (OKTA.md, "Errors, rate limits and retries") --------------------------
    def _retry_step(self, throttle: _Throttle, now: float) -> Step:
        k = throttle.count
        base = throttle.base
        waited = now - throttle.last_time
        timing = (
            f"Okta's rules said to wait {_duration(throttle.wait)}; "
            f"it came after {_duration(max(waited, 0.0))}."
        )
        return replace(
            base,
            label=f"{base.label} (retry {k})",
            explanation=(
                f"Retry {k} (attempt {k + 1} of {MAX_ATTEMPTS}) of a request answered 429: "
                f"{timing} {base.explanation}"
            ),
            retry=k,
            next_retry_in_s=None,
            retry_gives_up=False,
        )

    def _note_429(
        self, key: tuple[Any, ...], step: Step, retry_after: str | None, now: float
    ) -> tuple[Step, str]:
        entry = None if self._expired(key, now) else self._throttled.get(key, now)
        if entry is None:
            base = replace(step, retry=None, next_retry_in_s=None, retry_gives_up=False)
            if step.retry is not None:
                # The retry chain was forgotten meanwhile: start a new one from the plain label.
                suffix = f" (retry {step.retry})"
                label = step.label.removesuffix(suffix)
                base = replace(base, label=label, explanation=STEPS[step.id][1])
            entry = _Throttle(base, 0, now, 0.0)
        entry.count += 1
        k = entry.count
        if k >= MAX_ATTEMPTS:
            self._throttled.pop(key)
            # What Okta does then, in core/okta_expect's words (the proxy and check say it so).
            note = f"Answered 429 to attempt {k}: {rate_limited(True).okta_effect}."
            return replace(step, next_retry_in_s=None, retry_gives_up=True), note
        wait, why = retry_wait(k, retry_after)
        entry.wait = wait
        entry.last_time = now
        self._throttled.put(key, entry, now)
        note = (
            f"Answered 429 (attempt {k} of {MAX_ATTEMPTS}): Okta pauses the task and sends "
            f"retry {k} in {_duration(wait)} ({why})."
        )
        return replace(step, next_retry_in_s=wait, retry_gives_up=False), note
