"""Sweeps as a whole: expanding and checking points, resuming, searching a boundary, and the answer it gives.

The Hydra sweeper plugins in ``hydra_plugins/m9_sweepers`` are thin; the work lives here.
"""
