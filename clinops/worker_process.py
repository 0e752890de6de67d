"""Start a `clinops worker` process, wait until it responds, and stop it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from clinops.worker_client import worker_health
from schemas.errors import ClinopsError

# A cold worker imports Faust, River and chDB and joins its consumer group in 10-40 s
# on 2 cores; 180 s covers a loaded CI machine.
START_TIMEOUT_S = 180.0
# A worker stops its agents, signs the last audit entries and closes the store within
# seconds after SIGTERM; a minute covers a loaded machine before it is killed.
STOP_TIMEOUT_S = 60.0


def start_worker(env: Mapping[str, str], port: int, log_path: Path, *args: str, cwd: Path | None = None) -> subprocess.Popen:
    """Start a worker with ``args``, output appended to ``log_path``; return once it responds.

    Raises ClinopsError, with the end of the log, when it exits or does not respond in time.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "clinops.cli", "worker", *args],
            env=dict(env), stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while worker_health(port) is None:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise ClinopsError(f"the worker exited with code {process.returncode}; the end of {log_path}:\n{tail}")
        if time.monotonic() > deadline:
            stop_worker(process)
            raise ClinopsError(f"the worker did not respond on port {port} within {START_TIMEOUT_S:.0f} s; see {log_path}")
        time.sleep(0.5)
    return process


def stop_worker(process: subprocess.Popen) -> None:
    """Stop a worker with SIGTERM, or SIGKILL when it does not exit in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
