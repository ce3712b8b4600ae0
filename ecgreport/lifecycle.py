"""How a batch run stops: Ctrl-C, SIGTERM, and worker processes that die with their parent.

* Ctrl-C (SIGINT) and SIGTERM (``kill PID``, ``timeout``, a scheduler) are handled alike
  while :func:`interruptions` is active: the first one raises :class:`Interrupted`, so the
  run flushes its outputs and records ``"status": "interrupted"`` in ``run.json``; the
  exit code is 128 + the signal number (130 for SIGINT, 143 for SIGTERM). Signals that
  follow are only noted, so a second Ctrl-C cannot break the clean-up half-way (no
  traceback, no hang); the third forces an immediate exit, in case the clean-up itself
  is stuck (the outputs stay valid, ``run.json`` may then still say ``running``).
* :func:`deferred_signals` holds both signals off for a few lines that must not be cut in
  two (appending to both logs, counting what was appended).
* :func:`die_with_parent`, called in each forked worker, makes the worker exit within a
  second of its parent's death, however the parent died (even ``kill -9``, where no
  clean-up of the parent runs): ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` on Linux, and a
  thread watching the parent's pid as a fallback.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time

SIGNALS = (signal.SIGINT, signal.SIGTERM)
PARENT_POLL_S = 0.5
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class Interrupted(KeyboardInterrupt):
    """The run was stopped by ``signum`` (SIGINT or SIGTERM). ``summary``: what the run
    had done (a BatchSummary), set once its outputs are saved; ``by_signal``: False when
    a KeyboardInterrupt raised in code (not a signal) was passed on as this."""

    def __init__(self, signum: int = signal.SIGINT, summary=None, by_signal: bool = True):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.summary, self.by_signal = int(signum), summary, by_signal

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process killed by it."""
        return 128 + self.signum


@contextlib.contextmanager
def interruptions():
    """SIGINT and SIGTERM raise :class:`Interrupted` once inside the block, then are only
    noted (the third forces an exit). Outside the main thread, does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum, frame):
        received.append(signum)
        if len(received) == 1:
            raise Interrupted(signum)
        if len(received) >= 3:
            os._exit(128 + received[0])

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old if old is not None else signal.SIG_DFL)


def ignore_signals() -> None:
    """After an interruption is handled: further Ctrl-C or SIGTERM while the process
    prints its last message and exits are ignored rather than shown as a traceback."""
    if threading.current_thread() is threading.main_thread():
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN)


@contextlib.contextmanager
def deferred_signals():
    """Hold SIGINT and SIGTERM until the block is done, then deliver the first one to the
    handler that was in place (main thread only; elsewhere signals do not arrive)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum))
                for s in SIGNALS}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old if old is not None else signal.SIG_DFL)
    if received:  # delivered now, to the handler restored above (e.g. KeyboardInterrupt)
        signal.raise_signal(received[0])


def die_with_parent(parent_pid: int) -> None:
    """In a forked child: exit when the process ``parent_pid`` is gone.

    On Linux the kernel sends SIGKILL when the parent dies (``PR_SET_PDEATHSIG``; the
    parent's main thread forks the workers, and the setting follows that thread). A
    daemon thread checks ``os.getppid()`` every PARENT_POLL_S seconds as well, for
    systems without prctl. If the parent is already gone, exits at once.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="ecgreport-parent-watch", daemon=True).start()
