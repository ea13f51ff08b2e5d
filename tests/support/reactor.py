"""Twisted's asyncio reactor in a thread of the test process, for Scrapy components in-process.

attest runs Scrapy on Twisted's asyncio reactor (``TWISTED_REACTOR`` in settings.py). Its
components that schedule work on the reactor (the ledger pipeline's ``LoopingCall`` and
``deferToThread``, a crawler's engine) are tested in-process by running that reactor, once per
process (a reactor cannot be restarted), in a daemon thread, and calling into it with
:func:`in_reactor`, which waits for the result (a Deferred's or a coroutine's) with a timeout.

A process where this reactor runs cannot run another: ``crawlers.orchestration.run.run_capture``
starts its own, so tests call it in a process of its own. The main thread is left with no
current asyncio event loop, as before. The reactor's thread pool has one worker
(:func:`in_worker_thread` runs a call there).
"""

from __future__ import annotations

import asyncio
import queue
import sys
import threading
from collections.abc import Callable
from typing import Any

from scrapy.utils.defer import deferred_from_coro
from twisted.internet.defer import maybeDeferred
from twisted.python.failure import Failure

_lock = threading.Lock()
_thread: threading.Thread | None = None


def reactor() -> Any:
    """The asyncio reactor, running in its thread (installed and started on first use)."""
    global _thread
    with _lock:
        if _thread is None:
            if "twisted.internet.reactor" in sys.modules:
                from twisted.internet import reactor as installed

                raise RuntimeError(
                    f"a Twisted reactor is installed already ({type(installed).__name__}); "
                    "the reactor thread needs the asyncio reactor installed first"
                )
            from twisted.internet import asyncioreactor

            asyncioreactor.install(eventloop=asyncio.new_event_loop())
            from twisted.internet import reactor as installed

            # One worker thread: what a component keeps in a thread's local state (the record
            # client's connection to the recorder) can then be closed in that thread.
            installed.suggestThreadPoolSize(1)

            ready = threading.Event()
            installed.callWhenRunning(ready.set)
            _thread = threading.Thread(
                target=installed.run,
                kwargs={"installSignalHandlers": False},
                name="twisted-reactor",
                daemon=True,
            )
            _thread.start()
            if not ready.wait(30):
                raise RuntimeError("the Twisted reactor did not start within 30 s")
        from twisted.internet import reactor as running

        return running


def in_reactor(call: Callable[[], Any], *, timeout: float = 60.0) -> Any:
    """Run ``call`` in the reactor thread and return its result, once any Deferred or
    coroutine it returns has completed; its exception is raised here."""
    running = reactor()
    done: queue.Queue[tuple[bool, Any]] = queue.Queue()

    def start() -> None:
        def call_through() -> Any:
            result = call()
            if asyncio.iscoroutine(result):
                return deferred_from_coro(result)
            return result

        deferred = maybeDeferred(call_through)
        deferred.addCallbacks(
            lambda value: done.put((True, value)), lambda failure: done.put((False, failure))
        )

    running.callFromThread(start)
    try:
        ok, value = done.get(timeout=timeout)
    except queue.Empty:
        raise TimeoutError(f"the reactor did not finish {call!r} within {timeout} s") from None
    if not ok:
        assert isinstance(value, Failure)
        value.raiseException()
    return value


def in_worker_thread(call: Callable[[], Any], *, timeout: float = 60.0) -> Any:
    """Run ``call`` in the reactor's (one) worker thread, where ``deferToThread`` runs things."""
    from twisted.internet.threads import deferToThread

    return in_reactor(lambda: deferToThread(call), timeout=timeout)
