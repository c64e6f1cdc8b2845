"""The one progress-callback type every long operation takes (stage text, fraction 0..1)."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, float], None]
