"""An asyncio event loop on a virtual clock, for code that waits on timers and does no I/O.

`loop.time()` is a number the loop moves itself: whenever nothing is ready to run, the clock
jumps straight to the next timer (a `sleep`, a `wait_for` timeout, a `call_later`) instead of
waiting for it. Timers fire in their order and at their exact times, so a test can assert on
when things happened, and a minute of virtual time takes no longer than the callbacks in it:
how fast the machine is no longer matters.

Code that reads the time elsewhere (`time.monotonic()`) must be given `loop.time` instead.
Real I/O and threads are not waited for: the clock runs past them to the next timer. When no
timer is left and nothing is ready the program can never go on: that is an error here, not a
hang.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike

T = TypeVar("T")


class VirtualClock:
    def __init__(self, now: float) -> None:
        self.now = now


class _VirtualSelector(selectors.BaseSelector):
    """The loop's selector: it only ever looks whether I/O is ready (without waiting); a wait
    the loop asks for moves the clock instead."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._real = selectors.DefaultSelector()

    def register(
        self, fileobj: FileDescriptorLike, events: int, data: object = None
    ) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(
        self, fileobj: FileDescriptorLike, events: int, data: object = None
    ) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise RuntimeError("virtual time: no timer left and nothing to run (a deadlock)")
        self._clock.now += timeout  # the loop then runs the timer that was due
        return []

    def get_map(self) -> Mapping[FileDescriptorLike, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose `time()` is virtual, starting at `start`."""

    def __init__(self, start: float = 0.0) -> None:
        self.clock = VirtualClock(start)
        super().__init__(_VirtualSelector(self.clock))

    def time(self) -> float:
        return self.clock.now


def run_virtual(main: Callable[[], Awaitable[T]], start: float = 0.0) -> T:
    """Run `main()` to completion on a fresh `VirtualTimeLoop` whose clock starts at `start`."""

    async def wrapped() -> T:
        return await main()

    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(start)) as runner:
        return runner.run(wrapped())
