"""Local servers: a free port to start one on, and waiting until it answers over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


class NotServing(RuntimeError):
    """A server did not answer in time, or its process ended while we waited."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether `url` answers a GET with a success status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(200 <= response.status < 300)
    except OSError:
        return False


def wait_until_serving(
    url: str,
    process: subprocess.Popen[bytes] | None = None,
    seconds: float = 60.0,
    interval: float = 0.3,
) -> float:
    """Wait until `url` answers; the seconds it took. NotServing when `process` ends first or
    `seconds` pass (the caller decides what to do with the process)."""
    started = time.monotonic()
    while not answers(url, timeout=min(2.0, max(interval, 1.0))):
        if process is not None and process.poll() is not None:
            raise NotServing(f"{url}: the server process ended (exit code {process.returncode})")
        if time.monotonic() - started > seconds:
            raise NotServing(f"{url} did not answer within {seconds:.0f} s")
        time.sleep(interval)
    return time.monotonic() - started


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: trust the signal
    return state not in ("Z", "X")
