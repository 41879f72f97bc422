"""The adapter around Levanter's InferenceEngine: the only package that imports Levanter or JAX.

It runs inside the trial's child process (``python -m m9.engine.worker``), never in the process that launches sweeps.
"""
