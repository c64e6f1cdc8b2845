"""Persistent state of the service in SQLite (stdlib, WAL): meshes, models and the job queue.

One short-lived connection per operation keeps the store safe to use from the request threads and
the worker thread at once; WAL lets status reads proceed while the worker writes progress.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE_STATES = ("queued", "running")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meshes (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, vertices INTEGER NOT NULL, faces INTEGER NOT NULL,
    mesh_hash TEXT NOT NULL, allow_open INTEGER NOT NULL, report TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS models (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, preset TEXT NOT NULL, config TEXT NOT NULL,
    shapes TEXT NOT NULL, status TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, kind TEXT NOT NULL,
    status TEXT NOT NULL, params TEXT NOT NULL, model_id TEXT, progress TEXT, result TEXT,
    error TEXT, attempts INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL, started REAL, finished REAL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, seq);
"""

_JSON_COLUMNS = ("report", "config", "shapes", "params", "progress", "result", "error")


class Store:
    def __init__(self, path: Path, *, owner: bool = True) -> None:
        """``owner`` (the server): create the schema and hold one connection open for the store's life.

        In WAL mode the last connection to close checkpoints under an exclusive lock, and the next
        to open recovers under one; with a connection per call and a job process that hangs (or is
        stopped) in either, every request waited out the 30 s busy timeout. While the server holds a
        connection, a job process (``owner=False``) is never the last or the first, so a hung one can
        only hold the write lock, which the worker frees by killing it after the cancel grace.
        """
        self.path = path
        self._keeper: sqlite3.Connection | None = None
        if owner:
            with self._connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
            self._keeper = sqlite3.connect(path, check_same_thread=False)
            self._keeper.execute("SELECT count(*) FROM sqlite_master").fetchone()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA synchronous=NORMAL")
            yield db
        finally:
            db.close()

    # -- meshes ---------------------------------------------------------------------------------
    def add_mesh(
        self,
        mesh_id: str,
        name: str,
        vertices: int,
        faces: int,
        mesh_hash: str,
        allow_open: bool,
        report: Any,
    ) -> None:
        self._execute(
            "INSERT INTO meshes VALUES (?,?,?,?,?,?,?,?)",
            (mesh_id, name, vertices, faces, mesh_hash, int(allow_open), json.dumps(report), time.time()),
        )

    def get_mesh(self, mesh_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM meshes WHERE id=?", (mesh_id,))

    def list_meshes(self) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM meshes ORDER BY created")

    def delete_mesh(self, mesh_id: str) -> None:
        self._execute("DELETE FROM meshes WHERE id=?", (mesh_id,))

    # -- models ---------------------------------------------------------------------------------
    def add_model(
        self, model_id: str, name: str, preset: str, config: dict[str, Any], shapes: list[dict[str, Any]]
    ) -> None:
        self._execute(
            "INSERT INTO models VALUES (?,?,?,?,?,?,?)",
            (model_id, name, preset, json.dumps(config), json.dumps(shapes), "new", time.time()),
        )

    def update_model(self, model_id: str, **values: Any) -> None:
        self._update("models", model_id, values)

    def get_model(self, model_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM models WHERE id=?", (model_id,))

    def list_models(self) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM models ORDER BY created")

    def delete_model(self, model_id: str) -> None:
        self._execute("DELETE FROM models WHERE id=?", (model_id,))

    # -- jobs -----------------------------------------------------------------------------------
    def add_job(self, job_id: str, kind: str, params: dict[str, Any], model_id: str | None) -> None:
        self._execute(
            "INSERT INTO jobs (id, kind, status, params, model_id, created) VALUES (?,?,?,?,?,?)",
            (job_id, kind, "queued", json.dumps(params), model_id, time.time()),
        )

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM jobs WHERE id=?", (job_id,))

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        if status is None:
            return self._all("SELECT * FROM jobs ORDER BY seq DESC LIMIT ?", (limit,))
        return self._all("SELECT * FROM jobs WHERE status=? ORDER BY seq DESC LIMIT ?", (status, limit))

    def active_jobs_for_model(self, model_id: str) -> list[dict[str, Any]]:
        return self._all(
            "SELECT * FROM jobs WHERE model_id=? AND status IN ('queued','running') ORDER BY seq", (model_id,)
        )

    def active_jobs_for_mesh(self, mesh_id: str) -> list[dict[str, Any]]:
        rows = self._all("SELECT * FROM jobs WHERE status IN ('queued','running') ORDER BY seq")
        return [r for r in rows if mesh_id in json.dumps(r["params"])]

    def claim_next(self) -> dict[str, Any] | None:
        """Atomically move the oldest queued job to ``running`` (FIFO) and return it."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT id FROM jobs WHERE status='queued' AND (model_id IS NULL OR model_id NOT IN "
                "(SELECT model_id FROM jobs WHERE status='running' AND model_id IS NOT NULL)) "
                "ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is None:
                db.execute("COMMIT")
                return None
            db.execute(
                "UPDATE jobs SET status='running', started=?, attempts=attempts+1 WHERE id=?",
                (time.time(), row["id"]),
            )
            db.execute("COMMIT")
        return self.get_job(row["id"])

    def update_job(self, job_id: str, **values: Any) -> None:
        self._update("jobs", job_id, values)

    def request_cancel(self, job_id: str) -> str | None:
        """Cancel a queued job at once, flag a running one; return the status the job had."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT status FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None:
                db.execute("COMMIT")
                return None
            if row["status"] == "queued":
                db.execute(
                    "UPDATE jobs SET status='cancelled', cancel_requested=1, finished=?, error=? WHERE id=?",
                    (
                        time.time(),
                        json.dumps({"code": "cancelled", "message": "cancelled before it started"}),
                        job_id,
                    ),
                )
            elif row["status"] == "running":
                db.execute("UPDATE jobs SET cancel_requested=1 WHERE id=?", (job_id,))
            db.execute("COMMIT")
            return str(row["status"])

    def running_jobs(self) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM jobs WHERE status='running' ORDER BY seq")

    # -- helpers --------------------------------------------------------------------------------
    def _update(self, table: str, row_id: str, values: dict[str, Any]) -> None:
        if not values:
            return
        cols = ", ".join(f"{k}=?" for k in values)  # keys come from code, never from requests
        args = [json.dumps(v) if k in _JSON_COLUMNS and v is not None else v for k, v in values.items()]
        self._execute(f"UPDATE {table} SET {cols} WHERE id=?", (*args, row_id))

    def _execute(self, sql: str, args: tuple[Any, ...]) -> None:
        """One write statement on its own connection (autocommit)."""
        with self._connect() as db:
            db.execute(sql, args)

    def _one(self, sql: str, args: tuple[Any, ...]) -> dict[str, Any] | None:
        rows = self._all(sql, args)
        return rows[0] if rows else None

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._connect() as db:
            rows = db.execute(sql, args).fetchall()
        return [_decode(dict(r)) for r in rows]


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for key in _JSON_COLUMNS:
        if key in row and row[key] is not None:
            row[key] = json.loads(row[key])
    return row
