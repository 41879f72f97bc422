"""The grid sweeper (``hydra/sweeper=m9``): every combination of the swept values."""
