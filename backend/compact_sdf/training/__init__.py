"""Training a model and adding shapes to it.

``train`` (the one training loop), ``objective`` (what a step minimises), ``optim`` (optimisers and
schedule), ``distributed`` (torchrun / DDP), ``divergence`` (going back after a branch stops
learning), ``losslog`` (log.csv and the loss plot), ``eta`` (time left), ``scale`` (a preset scaled
to a collection), ``code_inversion`` (one code fitted on the frozen decoder) and ``add_shape`` (Add
to Model: a code fit, then a fine-tune where needed). Import the modules; this package exports nothing.
"""
