"""A child tied to its parent exits when the parent is SIGKILLed (prctl, and the fallback)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.procs import alive

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")

#: Starts a child tied to this process, prints its pid, then waits to be killed.
PARENT = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid()), sys.argv[2]])
print(child.pid, flush=True)
time.sleep(300)
"""

CHILD = """
import sys, time
from sentinel.lifeline import tie_to_parent
tie_to_parent(int(sys.argv[1]), pdeathsig=sys.argv[2] == "prctl", poll_seconds=0.1)
print("tied", flush=True)
time.sleep(300)
"""


@pytest.mark.parametrize("how", ["prctl", "watchdog"])
def test_a_tied_child_exits_when_its_parent_is_killed(how):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, how],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    child = int(parent.stdout.readline())
    assert parent.stdout.readline().strip() == "tied"  # the child shares the parent's stdout
    parent.kill()
    parent.wait()
    t0 = time.time()
    while alive(child) and time.time() - t0 < 5:
        time.sleep(0.05)
    gone = not alive(child)
    if not gone:
        os.kill(child, signal.SIGKILL)
    assert gone, f"{how}: the child outlived its parent by 5 s"
