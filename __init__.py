"""Compact SDF Blender extension entry point: Blender loads this package, the add-on lives in addon/."""

from .addon import register, unregister

__all__ = ["register", "unregister"]
