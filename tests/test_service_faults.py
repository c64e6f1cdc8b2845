"""Faults stay with their job: each job runs in its own process (service/isolation.py).

A job over its memory cap fails alone while /health and a concurrent job go on; a job stuck in code
that never polls for cancel (simulated by freezing its process with SIGSTOP, so the test does not
depend on how fast the machine is) is cancelled within 5 s; a server killed mid-job leaves no job
process running.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _service_helpers import FAST_TRAIN, arrays, ply_bytes, sphere, start_backend, trained_ball, wait_for

pytestmark = pytest.mark.process  # starts processes (a server, the CLI, ranks)


def descendants(pid: int) -> list[int]:
    """All processes below ``pid`` (from /proc), children first."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        kids = [p for p, parent in parents.items() if parent in frontier]
        found += kids
        frontier = kids
    return found


def job_processes(server_pid: int) -> list[int]:
    """The job children: processes below the server that are not multiprocessing's helpers."""
    out = []
    for pid in descendants(server_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" in cmdline:
            continue
        if b"forkserver" in cmdline and int(Path(f"/proc/{pid}/stat").read_text().split()[3]) == server_pid:
            continue  # the forkserver itself; its children are the jobs
        out.append(pid)
    return out


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Start a backend on loopback with extra ``serve`` flags; it must stop cleanly at the end."""
    started: list[Any] = []

    def start(*extra: str) -> Any:
        started.append(start_backend(tmp_path / "data", *extra))
        return started[-1]

    yield start
    for backend in started:
        assert backend.stop() == 0, backend.last_log_text()


def cancel_frozen(backend: Any, kind: str, **params: Any) -> float:
    """Freeze the job's process as soon as it exists, cancel it, and return how long the cancel took.

    The jobs given here take many seconds on any CPU, and the freeze comes within a few hundredths of
    a second of the process starting, so the job cannot finish first."""
    api = backend.client
    wait_for(lambda: not job_processes(backend.pid), 30, what="earlier job processes to end")
    job = api.create_job(kind, **params)
    children = wait_for(lambda: job_processes(backend.pid), 120, poll=0.02, what="the job's process")
    for pid in children:
        os.kill(pid, signal.SIGSTOP)
    start = time.monotonic()
    api.cancel_job(job["id"])
    wait_for(lambda: api.get_job(job["id"])["status"] != "running", 30, what="the cancel")
    took = time.monotonic() - start
    assert api.get_job(job["id"])["status"] == "cancelled"
    wait_for(lambda: not job_processes(backend.pid), 30, what="the job's process to end")
    return took


@pytest.mark.slow
def test_memory_fault_is_the_jobs_alone(serve: Callable[..., Any]) -> None:
    backend = serve("--workers", "2", "--job-memory-mb", "400")
    api = backend.client
    ball, model = trained_ball(api)
    # Admission refuses what its estimate says will not fit; preparation is not estimated, and 20
    # million sample points (several hundred MB each in float64) pass this job's 400 MB cap at once.
    many = {"sampling.surface_samples": 10_000_000, "sampling.uniform_samples": 10_000_000}
    hog = api.create_job("prepare", mesh_id=ball, preset="tiny", overrides=many)
    small = api.create_job("extract", model_id=model, shape="ball", resolution=32)
    assert api.health()["status"] == "ok"
    failed = api.wait_job(hog["id"], timeout=300)
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "out_of_memory", failed["error"]
    assert "memory" in failed["error"]["message"]
    assert api.wait_job(small["id"], timeout=300)["status"] == "succeeded"
    assert api.health()["status"] == "ok"
    again = api.create_job("extract", model_id=model, shape="ball", resolution=24)
    assert api.wait_job(again["id"], timeout=300)["status"] == "succeeded"  # the queue goes on


@pytest.mark.slow
def test_cancel_of_a_job_that_never_polls_returns_within_5_s(serve: Callable[..., Any]) -> None:
    backend = serve()
    api = backend.client
    _, model = trained_ball(api)
    assert cancel_frozen(backend, "extract", model_id=model, shape="ball", resolution=768) < 5.0
    evaluate = {"model_id": model, "shape": "ball", "resolution": 256, "samples": 2_000_000}
    assert cancel_frozen(backend, "evaluate", **evaluate) < 5.0
    after = api.create_job("extract", model_id=model, shape="ball", resolution=24)
    assert api.wait_job(after["id"], timeout=300)["status"] == "succeeded"


@pytest.mark.slow
def test_a_killed_server_leaves_no_job_running(tmp_path: Path) -> None:
    backend = start_backend(tmp_path / "data")
    try:
        api = backend.client
        ball = api.upload_arrays("ball", *arrays(sphere()))
        long = {**FAST_TRAIN, "train.steps": 100_000}
        job = api.create_job("train", mesh_ids=[ball["id"]], preset="tiny", overrides=long)
        wait_for(lambda: (api.get_job(job["id"])["progress"] or {}).get("step", 0) >= 5, 300, what="training")
        children = job_processes(backend.pid)
        assert children
        os.kill(backend.pid, signal.SIGKILL)
        backend.proc.wait(30)
        wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in children), 30, what="orphans")
    finally:
        backend.stop()


def test_memory_estimates_bound_what_fits() -> None:
    from compact_sdf import footprint
    from compact_sdf.config import get_preset

    cfg = get_preset("preview")
    sizes = [footprint.evaluate_estimate(cfg, n, 100_000).total for n in (64, 128, 256, 512)]
    assert sizes == sorted(sizes) and sizes[-1] > 8 * (sizes[1] - footprint.BASE_BYTES) / 2
    budget = 4 * footprint.GIB
    best = footprint.largest_resolution(cfg, budget, 100_000)
    assert footprint.evaluate_estimate(cfg, best, 100_000).total <= budget
    assert footprint.evaluate_estimate(cfg, best + 8, 100_000).total > budget
    paper, preview = get_preset("paper"), get_preset("preview")
    assert footprint.train_estimate(paper, 1).total > 8 * footprint.GIB  # 3 x 1.1 GB grid + a 100k batch
    assert footprint.train_estimate(preview, 50).total < 4 * footprint.GIB
    gpu = footprint.train_estimate(paper, 1, device="cuda")
    assert (
        "grid and optimiser state" not in gpu.parts and gpu.total < footprint.train_estimate(paper, 1).total
    )


def test_admission_checks_the_tightest_limit_and_names_it() -> None:
    """The per-job cap, an address-space limit and the GPU's memory each refuse a job, by name."""
    from compact_sdf import footprint
    from compact_sdf.config import get_preset
    from compact_sdf.errors import InputError

    budgets = footprint.host_budgets(256 * 1024**2)
    tight = footprint.tightest(budgets)
    assert tight is not None and tight.what == "the per-job memory limit (--job-memory-mb 256)"
    estimate = footprint.evaluate_estimate(get_preset("preview"), 512)
    with pytest.raises(InputError) as refused:
        footprint.check_fits(estimate, tight, "a resolution of 512", "lower it")
    assert "--job-memory-mb 256" in str(refused.value) and "extraction lattice" in str(refused.value)
    paper = footprint.train_estimate(get_preset("paper"), 1, device="cuda")
    assert paper.gpu_parts["grid and optimiser state"] > footprint.GIB  # the grid lives on the GPU
    # meshing on CUDA keeps the extraction lattice on the GPU, unless a join walks it in numpy
    preview = get_preset("preview")
    on_gpu = footprint.evaluate_estimate(preview, 512, device="cuda")
    assert "extraction lattice on the device" in on_gpu.gpu_parts and "extraction lattice" not in on_gpu.parts
    joined = footprint.evaluate_estimate(preview, 512, device="cuda", join=True)
    assert "extraction lattice" in joined.parts
    cpu = footprint.evaluate_estimate(
        replace(preview, extract=replace(preview.extract, meshing="tensors")), 512
    )
    assert cpu.gpu_total == 0 and cpu.total == estimate.total  # the same bytes, on the host
    with pytest.raises(InputError) as refused:
        footprint.check_fits(
            paper, None, "this training", "smaller", footprint.Budget(footprint.GIB, "the GPU")
        )
    assert "the GPU allows about 1.0 GiB" in str(refused.value)
    script = (  # ulimit -v in a child, so this process keeps its own limits
        "import resource; from compact_sdf import footprint; from compact_sdf.procfs import proc_bytes; "
        "held = proc_bytes('/proc/self/status', 'VmSize'); "
        "resource.setrlimit(resource.RLIMIT_AS, (held + 2**30, resource.getrlimit(resource.RLIMIT_AS)[1])); "
        "print(footprint.tightest(footprint.host_budgets(None)).what)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "the address-space limit (ulimit -v)", done.stderr


@pytest.mark.slow
def test_a_job_that_cannot_fit_is_refused_before_it_starts(serve: Callable[..., Any]) -> None:
    backend = serve()
    api = backend.client
    ball = api.upload_arrays("ball", *arrays(sphere()))
    # A 257^3 x 128 grid (8.7 GB, 26 GB with Adam) and 1M points a step through 8 x 512 MLPs.
    huge = {
        "model.grid_res": 257,
        "model.grid_channels": 128,
        "model.hidden": 512,
        "model.layers": 8,
        "train.samples_per_shape": 1_000_000,
    }
    with pytest.raises(Exception) as refused:
        api.create_job("train", mesh_ids=[ball["id"]], preset="tiny", overrides=huge)
    error = getattr(refused.value, "status", None), str(refused.value)
    assert error[0] == 422 and "memory" in error[1] and "grid" in error[1], error
    assert api.list_models() == []  # nothing half-created
    assert api.health()["status"] == "ok"


def raw_request(url: str, head: str, body: bytes = b"", timeout: float = 30.0) -> tuple[int, float]:
    """Send a request's head and the first part of its body on a bare socket; return the status line's
    code and the seconds from the head to the answer. A server that reads the whole declared body
    before it answers never answers here (the rest never comes), so the wait ends in a timeout."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        start = time.monotonic()
        sock.sendall(head.encode() + b"\r\n\r\n")
        with contextlib.suppress(OSError):  # the server may answer and close before this part is sent
            sock.sendall(body)
        status_line = sock.makefile("rb").readline()
        took = time.monotonic() - start
    return int(status_line.split()[1]), took


def health_latency(url: str) -> float:
    start = time.monotonic()
    with urllib.request.urlopen(f"{url}/health", timeout=60) as resp:
        assert resp.status == 200
    return time.monotonic() - start


def test_a_large_body_is_refused_before_it_is_read(serve: Callable[..., Any]) -> None:
    """No token: 401 from the headers of a 100 MB body (only 1 MB of it is ever sent) while /health
    answers; with the token, a JSON body over the small-body limit is 413 before it is read. The
    bound is relative to the server's own /health latency, so a slow machine does not fail it, but a
    server that waits for the body does (the rest of it never comes)."""
    backend = serve()
    url = backend.url
    baseline = max(health_latency(url) for _ in range(3))
    bound = max(0.5, 10 * baseline)
    jobs = "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
    head = f"{jobs}{100 << 20}"
    answers: list[float] = []
    poller = threading.Thread(target=lambda: answers.extend(health_latency(url) for _ in range(5)))
    poller.start()
    status, took = raw_request(url, head, b"[" * (1 << 20))
    poller.join(60)
    assert status == 401 and took < bound, (status, took, bound)
    assert len(answers) == 5 and max(answers) < bound + 1.0, answers
    status, took = raw_request(url, f"{jobs}1\r\nAuthorization: Bearer nope", b"{")
    assert status == 401 and took < bound  # malformed JSON without the token: 401, not 422
    token = f"\r\nAuthorization: Bearer {backend.token}"
    status, _ = raw_request(url, f"{jobs}1{token}", b"\xff")
    assert status == 422  # not UTF-8: invalid input as the spec says, not an undocumented 400
    authed = f"{head}{token}"
    status, took = raw_request(url, authed, b"[" * (1 << 20))
    assert status == 413 and took < bound, (status, took)
    assert backend.client.health()["status"] == "ok"
    status, _, message = refusal(lambda: backend.client.get_job("a" * 10_000))
    assert status == 404 and len(message) < 200, message  # a long id is not echoed back whole
    request = urllib.request.Request(f"{url}/api/v1/jobs", method="DELETE")
    request.add_header("Authorization", f"Bearer {backend.token}")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    assert info.value.code == 405 and info.value.headers["Allow"] == "GET, POST"


@pytest.mark.slow
def test_a_job_killed_from_outside_is_not_called_out_of_memory(serve: Callable[..., Any]) -> None:
    """SIGKILL is the kernel's out-of-memory killer only when its kill count rose (/proc/vmstat)."""
    from compact_sdf.service.isolation import oom_kills

    if oom_kills() is None:
        pytest.skip("no oom_kill count in /proc/vmstat here")
    backend = serve()
    api = backend.client
    ball = api.upload_arrays("ball", *arrays(sphere()))
    job = api.create_job(
        "train", mesh_ids=[ball["id"]], preset="tiny", overrides={**FAST_TRAIN, "train.steps": 100_000}
    )
    wait_for(lambda: (api.get_job(job["id"])["progress"] or {}).get("step", 0) >= 2, 300, what="training")
    for pid in job_processes(backend.pid):
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: api.get_job(job["id"])["status"] != "running", 60, what="the job to end")
    error = api.get_job(job["id"])["error"]
    assert error["code"] == "killed" and "outside" in error["message"], error


def mount_small_disk(path: Path, size_mb: int) -> str | None:
    """A tmpfs of ``size_mb`` at ``path`` (a real full disk: ENOSPC from the kernel); why not, if not."""
    path.mkdir()
    if os.geteuid() != 0:
        return "mounting a small tmpfs needs root"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], capture_output=True, text=True
    )
    return None if done.returncode == 0 else f"cannot mount a tmpfs here: {done.stderr.strip()}"


def fill(disk: Path) -> Path:
    """Write zeros until the disk refuses even one byte (appending, so a second call takes what was
    freed since); the file that holds them."""
    filler = disk / "filler"
    with open(filler, "ab", buffering=0) as f:
        for chunk in (1 << 20, 4096, 1):
            try:
                while f.write(b"\0" * chunk):
                    pass
            except OSError:
                continue
    return filler


def refusal(call: Callable[[], Any]) -> tuple[int, str, str]:
    """(status, code, message) of a request the server refuses."""
    with pytest.raises(Exception) as refused:
        call()
    err = refused.value
    return getattr(err, "status", 0), getattr(err, "code", ""), getattr(err, "message", str(err))


@pytest.mark.slow
def test_a_full_disk_is_said_in_words_and_the_queue_runs_again_once_space_is_back(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    why = mount_small_disk(disk, 96)
    if why:
        pytest.skip(why)
    backend = None
    try:
        backend = start_backend(disk / "data")
        api = backend.client
        ball = api.upload_arrays("ball", *arrays(sphere()))
        often = {**FAST_TRAIN, "train.steps": 100_000, "train.checkpoint_every": 5}
        job = api.create_job("train", mesh_ids=[ball["id"]], preset="tiny", overrides=often)
        wait_for(
            lambda: (api.get_job(job["id"])["progress"] or {}).get("step", 0) >= 10, 300, what="training"
        )
        wait_for(lambda: api.get_model(job["model_id"])["checkpoint"], 300, what="a checkpoint")
        filler = fill(disk)
        # The job fails in words at its next write, even while the database cannot record it yet.
        wait_for(lambda: api.get_job(job["id"])["status"] != "running", 120, what="the training to end")
        ended = api.get_job(job["id"])
        assert ended["status"] == "failed" and ended["error"]["code"] == "disk_full", ended["error"]
        assert "disk full" in ended["error"]["message"]
        wait_for(lambda: not job_processes(backend.pid), 30, what="the training's process to end")
        assert list((disk / "data" / "tmp").iterdir()) == []  # no temporary file left behind
        fill(disk)  # what the failed checkpoint write gave back, taken again
        status, code, message = refusal(lambda: api.upload_arrays("ball2", *arrays(sphere())))
        assert (status, code) == (507, "disk_full") and "disk full" in message and "free" in message, message
        for call in (
            lambda: api.upload_mesh("ball3", ply_bytes(sphere()), "ply"),
            lambda: api.export_codes(job["model_id"], "npz"),
        ):
            status, code, message = refusal(call)
            assert (status, code) == (507, "disk_full"), message
        health = api.health()
        assert health["status"] == "degraded" and not health["data_writable"], health
        assert "cannot be written" in health["problems"][0]
        filler.unlink()
        settled = wait_for(
            lambda: api.get_model(job["model_id"])["status"] != "training", 60, what="the model"
        )
        model = api.get_model(job["model_id"])
        assert settled and model["status"] == "interrupted" and model["checkpoint"], (
            model
        )  # last checkpoint kept
        after = api.create_job("extract", model_id=job["model_id"], shape="ball", resolution=24)
        assert api.wait_job(after["id"], timeout=300)["status"] == "succeeded"  # the queue runs again
        assert api.health()["status"] == "ok"
        assert api.get_job(job["id"])["error"]["code"] == "disk_full"  # now in the database too
    finally:
        if backend is not None:
            backend.stop()
        subprocess.run(["umount", "-l", str(disk)], check=False)


def npz_bytes(arrays: dict[str, bytes]) -> bytes:
    """A .npz whose members are the given raw .npy files (headers may lie about their sizes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for key, raw in arrays.items():
            zf.writestr(f"{key}.npy", raw)
    return buf.getvalue()


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def bad_codes_files(export: dict[str, Any]) -> dict[str, tuple[str, bytes]]:
    """Every malformed codes file of the attack list, as (format, body)."""
    one = {**export, "names": ["n1"], "codes": export["codes"][:1]}
    norm = export["shapes"]["ball"]["normalization"]
    shape = export["shapes"]["ball"]
    huge_header = io.BytesIO()  # 1.4 KB that declares a 16 GiB array
    np.lib.format.write_array_header_1_0(
        huge_header, {"descr": "<f4", "fortran_order": False, "shape": (4_194_304, 1024)}
    )
    bomb = io.BytesIO()  # 120 MB of zeros in about 120 KB
    np.savez_compressed(bomb, codes=np.zeros((1, 30_000_000), np.float32), names=np.array(["ball"]))
    as_json = {
        "empty shape metadata": {**one, "shapes": {"n1": {}}},
        "empty normalisation": {**one, "shapes": {"n1": {**shape, "normalization": {}}}},
        "text centre": {**one, "shapes": {"n1": {**shape, "normalization": {**norm, "center": "abc"}}}},
        "text shapes": {**one, "shapes": "abc"},
        "NaN scale": {**one, "shapes": {"n1": {**shape, "normalization": {**norm, "scale": float("nan")}}}},
        "zero scale": {**one, "shapes": {"n1": {**shape, "normalization": {**norm, "scale": 0.0}}}},
        "codes of 1e38": {**export, "codes": [[1e38] * len(row) for row in export["codes"]]},
    }
    files = {what: ("json", json.dumps(body).encode()) for what, body in as_json.items()}
    files["16 GiB header"] = (
        "npz",
        npz_bytes({"codes": huge_header.getvalue(), "names": npy(np.array(["x"]))}),
    )
    files["zip bomb"] = ("npz", bomb.getvalue())
    return files


@pytest.mark.slow
def test_codes_overrides_and_weights_from_outside_are_checked_before_anything_changes(
    serve: Callable[..., Any],
) -> None:
    backend = serve("--job-memory-mb", "1000")
    api = backend.client
    _, model = trained_ball(api)
    # The override is what runs, so it is what is estimated: 1024^3 cells are ~21 GiB, over 1000 MB.
    bypass = {"resolution": 8, "overrides": {"extract.resolution": 1024}}
    status, code, message = refusal(lambda: api.create_job("extract", model_id=model, shape="ball", **bypass))
    assert (status, code) == (422, "too_large") and "--job-memory-mb 1000" in message, message
    before = api.export_codes(model, "json")
    export = json.loads(before)
    for what, (fmt, body) in bad_codes_files(export).items():
        start = time.monotonic()
        status, _, message = refusal(lambda fmt=fmt, body=body: api.import_codes(model, body, fmt))
        assert 400 <= status < 500, (what, status, message)
        assert time.monotonic() - start < 30, what  # nothing big is unpacked
    assert api.export_codes(model, "json") == before  # nothing was replaced
    assert [s["name"] for s in api.get_model(model)["shapes"]] == ["ball"]
    assert list((Path(backend.data_dir) / "tmp").iterdir()) == []
    weights = {"shapes": ["ball", "ball"], "weights": [[1.0, 0.0, 0.0]]}  # three weights for two shapes
    status, _, message = refusal(lambda: api.create_job("interpolate", model_id=model, **weights))
    assert status == 422 and "weights" in message, message  # at submission, not when the job runs
    # The coarse-surface search evaluates the network in batches and polls the cancel between them:
    # the job stops itself (message "cancelled"), it is not killed after the grace ("process ended").
    slow = api.create_job("extract", model_id=model, shape="ball", resolution=320)
    stage = lambda: (api.get_job(slow["id"])["progress"] or {}).get("stage", "")  # noqa: E731
    wait_for(lambda: "coarse surface" in stage(), 300, poll=0.02, what="the coarse-surface search")
    api.cancel_job(slow["id"])
    stopped = api.wait_job(slow["id"], timeout=60)
    assert stopped["status"] == "cancelled" and stopped["error"]["message"] == "cancelled", stopped["error"]
    after = api.create_job("extract", model_id=model, shape="ball", resolution=24)
    assert api.wait_job(after["id"], timeout=300)["status"] == "succeeded"


def glb_with_buffer(uri: str) -> bytes:
    """A GLB whose one buffer is an outside file (``uri``): the loader refuses it, naming paths."""
    doc = {
        "asset": {"version": "2.0"},
        "buffers": [{"uri": uri, "byteLength": 36}],
        "bufferViews": [{"buffer": 0, "byteLength": 36}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3"}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
        "nodes": [{"mesh": 0}],
        "scenes": [{"nodes": [0]}],
    }
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    chunk = len(text).to_bytes(4, "little") + b"JSON" + text
    return b"glTF" + (2).to_bytes(4, "little") + (12 + len(chunk)).to_bytes(4, "little") + chunk


def test_errors_show_the_data_directory_as_DATA(serve: Callable[..., Any]) -> None:
    backend = serve()
    status, _, message = refusal(
        lambda: backend.client.upload_mesh("g", glb_with_buffer("/etc/hostname"), "glb")
    )
    assert status == 422 and "DATA/tmp/" in message, message
    assert str(Path(backend.data_dir).resolve()) not in message


def test_the_worker_outlives_a_database_that_refuses_writes(tmp_path: Path) -> None:
    """A job's end that the database refuses (a full disk) is read from memory meanwhile and
    recorded once a write succeeds; the worker thread never dies of it."""
    import sqlite3

    from compact_sdf.service.isolation import Outcome
    from compact_sdf.service.paths import DataDir
    from compact_sdf.service.store import Store
    from compact_sdf.service.worker import Worker

    data = DataDir(tmp_path / "data")
    store = Store(data.db_path)
    store.add_job("a" * 32, "extract", {}, None)
    job = store.claim_next()
    assert job is not None
    worker = Worker(store, data, device="cpu")
    real, refusals = store.update_job, [2]

    def full(job_id: str, **values: Any) -> None:
        if refusals[0]:
            refusals[0] -= 1
            assert worker.as_known(store.get_job(job_id) or {})["status"] == "failed"
            raise sqlite3.OperationalError("database or disk is full")
        real(job_id, **values)

    store.update_job = full  # type: ignore[method-assign]
    error = {"code": "disk_full", "message": "disk full"}
    worker._persist(job, Outcome("failed", error=error))  # retries every RETRY_S until it lands
    assert refusals == [0]
    assert store.get_job(job["id"])["error"] == error  # type: ignore[index]
