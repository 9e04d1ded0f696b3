"""Waiting for a ``sentinel serve`` process to answer (tests, benchmarks, scripts)."""

from __future__ import annotations

import subprocess
import time

import httpx


def wait_until_serving(base: str, proc: subprocess.Popen, timeout: float = 60.0) -> bool:
    """True once ``GET {base}/api/settings`` answers 200; False if the process exits or time runs
    out first (the caller reports the server's output)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/api/settings", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            return False
        time.sleep(0.2)
    return False
