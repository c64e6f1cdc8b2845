"""The local launcher and the serve command's start-up rules (token file, non-loopback bind, dead backend)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _service_helpers import addon_module, start_backend, wait_for

pytestmark = pytest.mark.process  # starts processes (a server, the CLI, ranks)

launcher = addon_module("launcher")
client_mod = addon_module("client")


def test_launcher_starts_on_a_free_port_and_stops_cleanly(tmp_path: Path) -> None:
    backend = start_backend(tmp_path / "data")
    try:
        assert backend.alive() and backend.url.startswith("http://127.0.0.1:")
        info = json.loads((tmp_path / "data" / "server.json").read_text())
        assert info["pid"] == backend.pid and backend.url.endswith(f":{info['port']}")
        assert backend.client.health()["status"] == "ok"
        unauth = client_mod.Client(backend.url, "some-other-token-0123456789")
        with pytest.raises(client_mod.ApiError) as err:
            unauth.list_jobs()
        assert err.value.status == 401
    finally:
        assert backend.stop() == 0, backend.last_log_text()
    assert not backend.alive()
    with pytest.raises(client_mod.BackendUnreachable, match="no backend answers"):
        client_mod.Client(f"http://{info['host']}:{info['port']}").health()


def test_launcher_reports_a_backend_that_dies(tmp_path: Path) -> None:
    backend = start_backend(tmp_path / "data")
    os.kill(backend.pid, signal.SIGKILL)
    wait_for(lambda: not backend.alive(), 30, what="the backend to die")
    with pytest.raises(launcher.BackendError, match="exited with code -9") as err:
        backend.check()
    assert "serving on" in str(err.value)  # the last log lines come with the report
    backend.stop()


def test_launcher_reports_start_failures_with_the_log(tmp_path: Path) -> None:
    backend = launcher.LocalBackend(sys.executable, tmp_path / "data", extra_args=("--max-faces", "many"))
    with pytest.raises(launcher.BackendError) as err:
        backend.start(timeout=60)
    assert "exited with code 2" in str(err.value) and "invalid int value: 'many'" in str(err.value)


def run_serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "COMPACT_SDF_TOKEN"} | (env or {})
    cmd = [sys.executable, "-m", "compact_sdf", "serve", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env)


def test_non_loopback_bind_needs_an_explicit_token(tmp_path: Path) -> None:
    proc = run_serve("--host", "0.0.0.0", "--port", "0", "--data", str(tmp_path / "d"))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "needs an explicit --token" in out


def test_generated_token_is_written_0600(tmp_path: Path) -> None:
    data = tmp_path / "d"
    proc = run_serve("--port", "0", "--data", str(data), "--log-level", "warning")
    try:
        wait_for(lambda: (data / "server.json").exists(), 60, what="server.json")
        token = (data / "token").read_text()
        assert (data / "token").stat().st_mode & 0o777 == 0o600 and len(token) >= 32
        url = json.loads((data / "server.json").read_text())["url"]
        api = client_mod.Client(url, token)
        wait_for(lambda: _answers(api), 60, what="health")
        assert api.list_jobs() == []
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert f"token written to {data.resolve() / 'token'}" in out


def _answers(api: object) -> bool:
    try:
        api.health()  # type: ignore[attr-defined]
        return True
    except client_mod.BackendUnreachable:
        time.sleep(0.1)
        return False
