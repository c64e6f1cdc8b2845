"""Local mode: run the backend as a child process on a free loopback port with a fresh token.

Standard library only. The server picks its own free port (``--port 0``) and writes it to
``DATA/server.json``, so there is no race between choosing a port and binding it. The token travels
in the child's environment, not on its command line (where other local users could read it); that
environment is ``setup_env.clean_env``: Blender's PYTHONPATH/PYTHONHOME must not reach another Python.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from collections import deque
from pathlib import Path
from typing import Any

from .client import BackendUnreachable, Client
from .setup_env import clean_env

TOKEN_ENV = "COMPACT_SDF_TOKEN"


class BackendError(Exception):
    """The backend could not start or has died; the message ends with its last log lines."""


class LocalBackend:
    """``with LocalBackend(python, data_dir) as backend: backend.client.health()``"""

    def __init__(
        self,
        python: str | os.PathLike[str],
        data_dir: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        device: str = "auto",
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.python = os.fspath(python)
        self.data_dir = Path(data_dir)
        self.host = host
        self.device = device
        self.extra_args = tuple(extra_args)
        self.env = dict(env or {})
        self.log_path = Path(log_path) if log_path else self.data_dir / "logs" / "backend.log"
        self.token = secrets.token_urlsafe(32)
        self.url: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> LocalBackend:
        """Start ``<python> -m compact_sdf serve`` and return once /health answers."""
        if self.alive():
            return self
        self.launch()
        return self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process and return at once: quick enough for Blender's main thread, and ``stop`` can
        end it from then on (a UI waits for it in a worker thread with ``wait_ready``)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "server.json").unlink(missing_ok=True)
        cmd = [self.python, "-m", "compact_sdf", "serve", "--host", self.host, "--port", "0"]
        cmd += ["--data", str(self.data_dir), "--device", self.device, *self.extra_args]
        env = {**clean_env(), **self.env, TOKEN_ENV: self.token}  # no Blender PYTHONPATH/PYTHONHOME
        with open(self.log_path, "ab") as log:
            self._log_offset = log.tell()
            log.write(f"--- starting backend at {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
            log.flush()
            kwargs: dict[str, Any] = {}
            if os.name == "posix":
                kwargs["start_new_session"] = True  # Ctrl-C in Blender's console does not kill it
            else:
                kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, **kwargs
            )

    def wait_ready(self, timeout: float = 120.0) -> LocalBackend:
        """Block until /health answers. Raises ``BackendError`` with the last log lines when the process
        dies or is stopped meanwhile, and stops it when it stays silent for ``timeout`` seconds."""
        info_path = self.data_dir / "server.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            if self.url is None:
                self.url = _read_url(info_path, self.pid)
            if self.url is not None:
                try:
                    self.client.health(timeout=2.0)
                    return self
                except BackendUnreachable:
                    pass
            time.sleep(0.2)
        self.stop()
        raise BackendError(f"the backend did not answer within {timeout:.0f} s\n{self.last_log_text()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        """Ask for a clean shutdown (training pauses at a checkpoint); kill after ``timeout``."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(
                signal.SIGTERM if os.name == "posix" else getattr(signal, "CTRL_BREAK_EVENT", signal.SIGTERM)
            )
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.url = None
        return proc.returncode

    def __enter__(self) -> LocalBackend:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state --------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def client(self) -> Client:
        if self.url is None:
            raise BackendError("the backend is not running")
        return Client(self.url, self.token)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        """Raise ``BackendError`` with the exit code and last log lines if the process has died."""
        if self.proc is None:
            raise BackendError("the backend was never started")
        code = self.proc.poll()
        if code is not None:
            raise BackendError(f"the backend exited with code {code}\n{self.last_log_text()}")

    def last_log_lines(self, n: int = 20) -> list[str]:
        """The last ``n`` lines this start wrote to the log (what a user needs to see after a crash)."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._log_offset)
                lines = deque(fh.read().decode("utf-8", "replace").splitlines(), maxlen=n)
        except OSError:
            return []
        return list(lines)

    def last_log_text(self, n: int = 20) -> str:
        lines = self.last_log_lines(n)
        return f"last log lines ({self.log_path}):\n" + "\n".join(lines) if lines else "(no log output)"


def _read_url(info_path: Path, pid: int | None) -> str | None:
    """The URL from server.json once the child (and not an older server) has written it."""
    try:
        info = json.loads(info_path.read_text())
    except (OSError, ValueError):
        return None
    return str(info["url"]) if info.get("pid") == pid else None
