"""Errors that carry a message meant for the user (CLI one-liner, HTTP JSON, Blender report)."""

from __future__ import annotations


class CompactSDFError(Exception):
    """A failure the user can act on. ``code`` is a stable machine-readable tag."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} ({self.hint})" if self.hint else base


class InputError(CompactSDFError):
    """Bad user input: a file that is not a mesh, an open mesh, NaNs, an unknown shape name."""

    code = "bad_input"


class CheckpointError(CompactSDFError):
    """A model directory or checkpoint that is missing, damaged or incompatible."""

    code = "bad_checkpoint"


class Cancelled(CompactSDFError):
    """The user asked to stop; raised at a step boundary after state is saved."""

    code = "cancelled"
