"""Long requests in slices: no request holds the IOLoop for more than about SLICE_S at a time.

The core writes work that can grow with the data (filtering, sorting: ``ScimService.list_steps``
and ``search_all_steps``) as generators that yield every millisecond or two of work. Here such a
generator is run on the IOLoop thread: all at once when it finishes within SLICE_S (Okta's
indexed ``userName eq`` check and unfiltered pages never notice), else in slices of SLICE_S with
the loop free in between (issue 12: one 40,000-clause filter on 3,000 users held the loop, and so
every other client, for 99.8 s).

Why slices on the loop thread rather than a worker thread: the store and the derived group views
are IOLoop-only (core/repository.py), and a Python worker would hold the GIL in 5 ms turns that
every socket call on the loop must wait for, slowing every other request tenfold while it runs.

Slices of all long requests take turns through one lock per loop (first come, first served),
each slice after a short idle pause of the loop (GAP_S): however many long requests wait, the
loop alternates between at most one slice and a pause, and another client waits for about one
slice plus the few loop passes its own request takes. A request whose client went away stops at
its next turn.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Generator
from typing import Any

#: The longest a long request holds the IOLoop at a time, in seconds.
SLICE_S = 0.01
#: The pause after every slice, in seconds, while no long request runs: a real timer, so the
#: loop goes idle and serves whatever is waiting (reading a request takes the loop a few
#: passes). ``sleep(0)`` was not enough: measured with three long requests taking turns,
#: another client's GET by id then waited up to ~110 ms; with this pause, ~25 ms.
GAP_S = 0.002

_clock = time.perf_counter
#: One turn lock per event loop (each server thread has its own loop; tests start many).
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def run_in_slices(
    steps: Generator[None, None, Any],
    answer: Callable[[Any], None],
    gone: Callable[[], bool],
    abandoned: Callable[[], BaseException],
) -> Awaitable[None] | None:
    """Run ``steps`` and call ``answer`` with what it returns.

    Returns None when it finished within the first slice (answered already), else an
    awaitable that runs the rest in turns with other long requests. ``gone`` says whether the
    client went away (then the work stops and the awaitable raises ``abandoned()``).
    Exceptions from ``steps`` (a ScimError for a bad filter) propagate to the caller.
    """
    if _run_slice(steps, answer):
        return None
    return _in_turns(steps, answer, gone, abandoned)


def _run_slice(steps: Generator[None, None, Any], answer: Callable[[Any], None]) -> bool:
    """Advance ``steps`` for up to SLICE_S; True when it finished (and was answered)."""
    deadline = _clock() + SLICE_S
    try:
        while True:
            next(steps)
            if _clock() >= deadline:
                return False
    except StopIteration as done:
        answer(done.value)
        return True


async def _in_turns(
    steps: Generator[None, None, Any],
    answer: Callable[[Any], None],
    gone: Callable[[], bool],
    abandoned: Callable[[], BaseException],
) -> None:
    loop = asyncio.get_running_loop()
    turn = _turns.get(loop)
    if turn is None:
        turn = _turns[loop] = asyncio.Lock()
    try:
        while True:
            # One slice, then the pause, both holding the turn: however many long requests
            # wait, each slice is followed by a pause, and the lock hands turns round them in
            # the order they came.
            async with turn:
                await asyncio.sleep(GAP_S)
                if gone():
                    raise abandoned()
                if _run_slice(steps, answer):
                    return
    finally:
        steps.close()
