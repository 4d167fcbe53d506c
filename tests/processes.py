"""Child servers the tests start (`chroma run`, `streamlit run`): stopping them cleanly."""

from __future__ import annotations

import subprocess


def stop(proc: subprocess.Popen, timeout: float) -> None:
    """Terminate, and kill if it has not exited within `timeout` seconds: a server left
    running would hold its port for the next test run."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
