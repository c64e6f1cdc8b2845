"""The job-operator mixin every operator that runs backend jobs shares (encode, reconstruct, interpolate,
codes), and the Cancel operator.

Modelled on ``_ExtCmdMixIn`` of Blender's own extension operators (``bl_pkg/bl_extension_ops.py``): the
subclass only says *what* to run (``job_requests``, like ``exec_command_iter``); submitting, following
(timer in the UI, a blocking wait in background mode), reporting and the finish handler (like
``exec_command_finish``) live here once. ``poll`` greys the button out with the reason (as node_wrangler
does with ``poll_message_set``) when the selection or the backend makes the click pointless.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import bpy
from bpy.props import StringProperty
from bpy.types import Operator

from . import connection, jobs
from .notes import level


@dataclass
class JobRequest:
    """One backend job an operator wants: the API body, a label for the panel, and what to do after."""

    body: dict[str, Any]
    label: str
    on_done: jobs.Handler  # runs once the job succeeded; makes the Blender data; returns a summary
    failure: str = ""  # prefix of the error when the job cannot even be queued ("" = the operator's)
    on_finish: Callable[[dict[str, Any]], None] | None = None


class JobOperatorMixin:
    """Sub-classes define ``job_requests`` (and may define ``poll_problem`` and ``failure``)."""

    failure = "Failed"  # e.g. "Encoding failed": prefixes an error raised while preparing the jobs

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "bl_idname" in cls.__dict__ and cls.job_requests is JobOperatorMixin.job_requests:
            raise TypeError(f"{cls.__name__} must define job_requests")

    @classmethod
    def poll_problem(cls, context: bpy.types.Context) -> str | None:
        """Why the operator cannot run with this selection, or None (no backend request: poll runs on
        every redraw)."""
        return None

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        problem = cls.poll_problem(context)
        if problem is None:
            problem = connection.problem(context)
        if problem is not None:
            cls.poll_message_set(problem)  # type: ignore[attr-defined]
            return False
        return True

    def job_requests(self, context: bpy.types.Context) -> list[JobRequest] | None:
        """The jobs to queue; None (after a report) to stop, [] when nothing is left to queue. May upload
        or ask the backend first; an exception is reported with ``failure`` in front."""
        raise NotImplementedError

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            requests = self.job_requests(context)
        except Exception as exc:
            self.report({"ERROR"}, f"{self.failure}: {exc}")  # type: ignore[attr-defined]
            return {"CANCELLED"}
        if requests is None:
            return {"CANCELLED"}
        if not requests:  # the work was done while preparing (e.g. an import with nothing to decode)
            return {"FINISHED"}
        outcomes = [self.submit(context, request) for request in requests]
        return {"FINISHED"} if any(outcomes) else {"CANCELLED"}

    def submit(self, context: bpy.types.Context, request: JobRequest) -> bool:
        """Queue one job and follow it; True when it was queued (and, in background mode, succeeded)."""
        report = self.report  # type: ignore[attr-defined]
        try:
            job = connection.submit(request.body, context)
        except Exception as exc:
            report({"ERROR"}, f"{request.failure or self.failure}: {exc}")
            return False
        outcome = jobs.follow(job, request.label, request.on_done, request.on_finish)
        if outcome is None:
            report({"INFO"}, f"{request.label} started; progress is in the Compact SDF panel")
            return True
        ok, message = outcome
        report({level(ok, message)}, message)
        return ok


class SceneJobMixin(JobOperatorMixin):
    """A job operator whose result adds objects to the scene: registered for redo and undo."""

    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)


class COMPACT_SDF_OT_cancel_job(Operator):
    """Ask the backend to stop a followed job, or all of them (training keeps its last checkpoint)"""

    bl_idname = "compact_sdf.cancel_job"
    bl_label = "Cancel Job"

    job_id: StringProperty(  # type: ignore[valid-type]
        name="Job",
        description="The job to cancel; empty = every job the panel follows",
        options={"SKIP_SAVE"},
    )

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        problem = None if jobs.active() else "No job is running"
        problem = problem or connection.problem(context)
        if problem is not None:
            cls.poll_message_set(problem)
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            count = jobs.cancel([self.job_id] if self.job_id else None)
        except Exception as exc:
            self.report({"ERROR"}, f"Cancel failed: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Asked the backend to cancel {count} job{'s' if count != 1 else ''}")
        return {"FINISHED"}


classes = (COMPACT_SDF_OT_cancel_job,)
