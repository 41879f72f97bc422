"""Sweeps as a whole: expanding and checking points, searching a boundary, resuming, and the sweep's own record.

The Hydra sweeper plugins in ``hydra_plugins/m9_sweepers`` are thin; the work lives here.
"""
