"""Servers the tests start: children (`chroma run`, `streamlit run`) stopped cleanly, and the
API served on loopback in a thread."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def stop(proc: subprocess.Popen, timeout: float) -> None:
    """Terminate, and kill if it has not exited within `timeout` seconds: a server left
    running would hold its port for the next test run."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def serving(app: Any, port: int = 0) -> Iterator[str]:
    """The API app served by uvicorn on 127.0.0.1 in a thread: its base URL while the block
    runs. Why a real server and not a test client: what clients meet is the socket (streamed
    bodies, Server-Sent Events, Content-Length), which a test client skips."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "l'API n'a pas démarré"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
