"""A clean stop on SIGTERM (how Spaces and Docker stop an app) as on SIGINT (Ctrl-C).

uvicorn handles both signals with a graceful shutdown and then raises the signal again for the handler that
was installed before it: for SIGTERM that is the default one, which kills the process before any ``finally``
runs, so the evaluation log was never flushed nor pushed. :func:`signals_interrupt` installs a SIGTERM handler
that raises :class:`KeyboardInterrupt` like SIGINT, so the caller's ``finally`` runs
:func:`close_within`: flush, fsync and last Hub push, bounded by a timeout.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

logger = logging.getLogger(__name__)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`KeyboardInterrupt` (as SIGINT does) in the main thread."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def close_within(close: Callable[[], None], timeout: float) -> bool:
    """Run ``close`` (e.g. ``Evaluator.close``) for at most ``timeout`` seconds; False if it did not finish.

    It runs in a daemon thread, so a Hub that hangs cannot hold the process past the platform's kill deadline;
    the records are on disk by then (the log writes and fsyncs before it pushes), and the next start on
    the same disk pushes what the last push missed.
    """
    done = threading.Event()

    def run() -> None:
        try:
            close()
        except Exception:
            logger.exception("Error while closing the evaluator")
        finally:
            done.set()

    threading.Thread(target=run, name="close", daemon=True).start()
    if not done.wait(timeout):
        logger.warning("Closing took more than %g s: exiting anyway (the records are on disk)", timeout)
        return False
    return True
