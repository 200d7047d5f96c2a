"""Waiting for an :class:`asyncio.Event` with a timeout, in a way a task can always be cancelled out of.

``asyncio.wait_for(event.wait(), timeout)`` is not used for this: in Python 3.11, when the task waiting
is cancelled in the same loop turn as its inner wait completes (a wake-up just set), ``wait_for``
returns the inner result and the cancellation is lost. A loop built around it (a bot's quoting loop, a
retry loop) then never stops, and whatever awaits it after ``cancel()`` (an engine's ``stop``) hangs:
this is how a desk whose start failed could not stop its market maker. ``asyncio.timeout`` keeps the
cancellation, and needs no inner task per wait either.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; True if it is set."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
