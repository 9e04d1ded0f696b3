"""The isolated retrain's training process ends with the process that started it (kill -9)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="needs /proc and prctl")

#: Loaded by every Python the test starts (PYTHONPATH): the training pass "works" for two
#: minutes, and says when it started. The slowness lives here, not in sentinel.retrain.
SITECUSTOMIZE = """
import os
if os.environ.get("RETRAIN_MARK"):
    import time
    import sentinel.retrain as retrain

    def _slow_pass(self, symbols, refresh_samples):
        open(os.environ["RETRAIN_MARK"], "w").close()
        time.sleep(120)
        return {}

    retrain.RetrainManager._pass_here = _slow_pass
"""

#: ``sentinel serve`` in miniature: an isolated retrain started in the background.
SERVER = """
import sys, time
from pathlib import Path
from sentinel.db import Store
from sentinel.retrain import RetrainManager
from sentinel.settings import Settings

tmp = Path(sys.argv[1])
store = Store(f"sqlite:///{tmp / 'r.db'}")
manager = RetrainManager(store, Settings(data_dir=tmp, environment="test"), isolated=True)
manager.start()
while manager._child is None:
    time.sleep(0.01)
print(manager._child.pid, flush=True)
time.sleep(300)
"""

#: A subreaper (like ``systemd --user`` or a container's init): orphans become its children, so
#: ``getppid() == 1`` does not tell an orphan. Kills the server, then reports the child's fate.
HARNESS = """
import ctypes, os, signal, subprocess, sys, time
from pathlib import Path

ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
tmp, when = Path(sys.argv[1]), sys.argv[2]
mark = tmp / "mark"
server = subprocess.Popen([sys.executable, "-c", sys.argv[3], str(tmp)],
                          stdout=subprocess.PIPE, text=True)
child = int(server.stdout.readline())
if when == "mid-pass":  # the child is training
    deadline = time.time() + 120
    while not mark.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert mark.exists(), "the training pass never started"
# else: "starting": the child is still importing (before it could ask for a death signal)
server.kill()
server.wait()
t0 = time.time()
while time.time() - t0 < 20:
    pid, status = os.waitpid(child, os.WNOHANG)  # an orphan is ours to reap (subreaper)
    if pid:
        print(f"gone after {time.time() - t0:.1f}s", flush=True)
        sys.exit(0)
    time.sleep(0.05)
os.kill(child, signal.SIGKILL)
os.waitpid(child, 0)
print("alive 20s after its parent was killed", flush=True)
"""


@pytest.mark.parametrize("when", ["starting", "mid-pass"])
def test_the_training_process_dies_with_a_killed_parent(tmp_path, when):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(SITECUSTOMIZE))
    import os

    env = {**os.environ, "PYTHONPATH": str(site), "RETRAIN_MARK": str(tmp_path / "mark")}
    r = subprocess.run(
        [sys.executable, "-c", HARNESS, str(tmp_path), when, SERVER],
        env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith("gone after"), (r.stdout, r.stderr[-3000:])
    assert (tmp_path / "mark").exists() == (when == "mid-pass")
