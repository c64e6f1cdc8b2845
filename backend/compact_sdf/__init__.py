"""Compact SDF backend: one compact latent space of neural SDFs for many meshes."""

__version__ = "0.1.0"
