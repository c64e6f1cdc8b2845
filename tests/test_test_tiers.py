"""`make test-fast` stays fast: a test module that starts processes says so with a marker.

``make test-fast`` deselects ``slow``, ``blender`` and ``process``; an unmarked module that starts a
server or a subprocess would slip into it and make it slow or flaky again.
"""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
STARTS = ("subprocess.", "start_backend(", "Popen(", "job.start()", "worker.start()", "torch.distributed.run")
MARKED = ("pytest.mark.process", "pytest.mark.blender")


def test_modules_that_start_processes_are_marked() -> None:
    unmarked = [
        path.name
        for path in sorted(TESTS.glob("test_*.py"))
        if path.name != Path(__file__).name
        and any(s in (text := path.read_text(encoding="utf-8")) for s in STARTS)
        and not any(m in text for m in MARKED)
    ]
    assert not unmarked, f"start processes without a process/blender marker: {unmarked}"
