"""Child processes that end with their parent: no orphan keeps computing after a ``kill -9``.

A sweep's worker pool and the isolated retrain process are spawned children; when the parent is
killed they are re-parented (to PID 1 or to a subreaper such as ``systemd --user``) and would
otherwise run on, finishing queued work and then idling with hundreds of MB each. A child calls
:func:`tie_to_parent` first thing:

* Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, so the kernel kills the child the moment the parent
  (the thread that started it) exits, whatever the signal;
* then a check that the parent is still the one that started it (it may have died before the
  ``prctl``, while the child was importing), so the child exits at once;
* everywhere: a daemon thread polling :func:`os.getppid`, which changes when the child is
  re-parented (the portable fallback where ``prctl`` does not exist).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

#: Seconds between two checks of the watchdog thread.
POLL_SECONDS = 0.5

_PR_SET_PDEATHSIG = 1


def _set_pdeathsig() -> bool:
    """Linux: ask the kernel to SIGKILL this process when its parent exits; False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    return False


def _orphaned(parent_pid: int) -> bool:
    return os.getppid() != parent_pid


def tie_to_parent(
    parent_pid: int, *, pdeathsig: bool = True, poll_seconds: float = POLL_SECONDS
) -> None:
    """End this process (exit code 1, no clean-up) as soon as ``parent_pid`` is gone.

    ``parent_pid`` is the parent's :func:`os.getpid` taken *before* starting the child (the child
    cannot learn it afterwards: once orphaned, :func:`os.getppid` names the new parent).
    ``pdeathsig=False`` relies on the watchdog thread alone (what non-Linux systems get).
    """
    if pdeathsig:
        _set_pdeathsig()
    if _orphaned(parent_pid):  # died before the prctl took effect
        os._exit(1)

    def watch() -> None:
        while not _orphaned(parent_pid):
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="sentinel-lifeline", daemon=True).start()


__all__ = ["POLL_SECONDS", "tie_to_parent"]
