"""The one place a device name (``auto``, ``cpu``, ``cuda``, ``cuda:N``) becomes a torch device."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from compact_sdf.errors import InputError

if TYPE_CHECKING:  # torch loads where a device is needed, not with every CLI parser
    import torch


def resolve_device(name: str) -> torch.device:
    """``auto`` = CUDA when torch sees a GPU, else CPU; plain ``cuda`` under torchrun is ``cuda:LOCAL_RANK``.

    Asking for CUDA without one, or for an unknown device, is the user's error (``InputError``).
    """
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise InputError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {name!r} was asked for, but this torch build sees no CUDA GPU")
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device
