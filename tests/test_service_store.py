"""Job store, worker recovery and path safety, without a server (fast)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from compact_sdf.atomic import atomic_write_bytes
from compact_sdf.errors import InputError
from compact_sdf.service.paths import DataDir, check_name, new_id
from compact_sdf.service.store import Store
from compact_sdf.service.worker import MAX_ATTEMPTS, Worker


@pytest.fixture
def data(tmp_path: Path) -> DataDir:
    return DataDir(tmp_path / "data")


@pytest.fixture
def store(data: DataDir) -> Store:
    return Store(data.db_path)


@pytest.mark.parametrize(
    "name",
    [
        "..",
        "../evil",
        "a/b",
        "/etc/passwd",
        "a\x00b",
        ".hidden",
        "",
        "x" * 65,
        "a b",
        "..\\x",
        "%2e%2e",
        "a..b",
    ],
)
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(InputError, match="invalid"):
        check_name(name)


@pytest.mark.parametrize("name", ["knight", "knight_small.v2", "A-1", "9"])
def test_good_names_pass(name: str) -> None:
    assert check_name(name) == name


def test_paths_only_from_ids_and_checked_names(data: DataDir) -> None:
    job = new_id()
    assert data.result_file(job, "mesh.ply").parent == data.root / "results" / job
    for bad in ("../x", "x/../../y", "/abs", "ABCDEF" * 6, "0" * 31):
        with pytest.raises(InputError):
            data.model_dir(bad)
    with pytest.raises(InputError):
        data.result_file(job, "../../jobs.sqlite")


def test_atomic_write_keeps_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "token"
    atomic_write_bytes(target, b"secret", mode=0o600)
    assert target.read_bytes() == b"secret"
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["token"]


def test_queue_is_fifo_and_skips_busy_models(store: Store) -> None:
    model = new_id()
    ids = [new_id() for _ in range(3)]
    store.add_job(ids[0], "train", {}, model)
    store.add_job(ids[1], "extract", {}, model)  # same model: must wait for the train job
    store.add_job(ids[2], "prepare", {}, None)
    first = store.claim_next()
    assert first is not None and first["id"] == ids[0] and first["status"] == "running"
    second = store.claim_next()
    assert second is not None and second["id"] == ids[2]
    assert store.claim_next() is None
    store.update_job(ids[0], status="succeeded")
    third = store.claim_next()
    assert third is not None and third["id"] == ids[1]


def test_cancel_queued_is_immediate_running_is_flagged(store: Store) -> None:
    a, b = new_id(), new_id()
    store.add_job(a, "train", {}, None)
    store.add_job(b, "train", {}, None)
    store.claim_next()
    assert store.request_cancel(a) == "running"
    assert store.get_job(a)["status"] == "running" and store.get_job(a)["cancel_requested"] == 1
    assert store.request_cancel(b) == "queued"
    assert store.get_job(b)["status"] == "cancelled"
    assert store.request_cancel(new_id()) is None


def test_recover_requeues_running_jobs_then_gives_up(store: Store, data: DataDir) -> None:
    job = new_id()
    store.add_job(job, "extract", {"x": 1}, None)
    worker = Worker(store, data, device="cpu")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        claimed = store.claim_next()
        assert claimed is not None and claimed["attempts"] == attempt
        worker.recover()  # as if the server had been killed while the job ran
        row = store.get_job(job)
        if attempt < MAX_ATTEMPTS:
            assert row["status"] == "queued"
            assert "restart" in row["progress"]["stage"]
    row = store.get_job(job)
    assert row["status"] == "failed"
    assert row["error"]["code"] == "interrupted" and "stopped 3 times" in row["error"]["message"]
    assert row["params"] == {"x": 1}


def test_a_requeued_job_keeps_its_bar_and_its_line_says_so_until_it_runs(store: Store, data: DataDir) -> None:
    """After a restart the job's row must not say "paused" with an empty bar while it runs again."""
    from compact_sdf.service.worker import PAUSED, REQUEUED, RESUMING, held, resuming

    job = new_id()
    store.add_job(job, "train", {}, None)
    store.claim_next()
    store.update_job(job, progress={"stage": "train", "fraction": 0.6, "step": 120})
    Worker(store, data, device="cpu").recover()
    row = store.get_job(job)
    assert row["status"] == "queued" and row["progress"] == {"stage": REQUEUED, "fraction": 0.6}
    claimed = store.claim_next()
    assert claimed is not None and resuming(claimed)
    assert held(claimed, RESUMING) == {"stage": RESUMING, "fraction": 0.6}
    assert resuming({"progress": {"stage": PAUSED, "fraction": 0.2}})
    assert not resuming({"progress": {"stage": "train", "fraction": 0.2}})
    assert not resuming({"progress": None})


def test_recover_finishes_a_job_cancelled_before_the_crash(store: Store, data: DataDir) -> None:
    job = new_id()
    store.add_job(job, "train", {}, None)
    store.claim_next()
    store.request_cancel(job)
    Worker(store, data, device="cpu").recover()
    assert store.get_job(job)["status"] == "cancelled"


@pytest.mark.process
def test_worker_runs_a_job_and_records_failure_reason(store: Store, data: DataDir) -> None:
    """A job whose input vanished fails with the user-facing reason, not a traceback."""
    job = new_id()
    store.add_job(job, "prepare", {"mesh_id": new_id(), "preset": "tiny"}, None)
    worker = Worker(store, data, device="cpu")
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while store.get_job(job)["status"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    row = store.get_job(job)
    assert row["status"] == "failed", row
    assert row["error"]["code"] == "bad_input" and "no longer exists" in row["error"]["message"]
    json.dumps(row)  # everything stored is plain JSON


def test_a_hung_job_process_is_never_the_last_or_first_connection(data: DataDir) -> None:
    """In WAL mode the last connection to close checkpoints and deletes the WAL under an exclusive
    lock, and the next one recovers under one: a job process stopped in either blocked every request
    for the 30 s busy timeout (seen in CI). The server's store holds a connection, so the WAL stays."""
    server = Store(data.db_path)
    job = Store(data.db_path, owner=False)  # what a job process opens
    server.add_mesh("m1", "ball", 8, 12, "hash", False, {})
    assert job.get_mesh("m1") is not None
    wal = data.db_path.with_name(data.db_path.name + "-wal")
    assert wal.exists()  # nobody was the last to close: no checkpoint-and-delete under an exclusive lock
