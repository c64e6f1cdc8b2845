"""From a trained field to a mesh: the fused extraction and everything it is built from.

``fusion`` (signed-distance fusion, the entry point ``extract_shape``), ``search`` (the sparse
surface search), ``lattice`` (masks and blockwise marching cubes), ``dense`` (the dense reference
of the same definition), ``manifold`` (the guard), ``handles`` (opt-in closing), ``mesh``
(``MeshArrays``, writing), ``interpolate`` and ``blend`` (shapes between codes), ``connect``
(joining an in-between's parts), ``mesh_quality`` (one clean body?) and ``band_check`` (does the
fusion band hold each shape). Import the modules themselves; this package exports nothing.
"""
