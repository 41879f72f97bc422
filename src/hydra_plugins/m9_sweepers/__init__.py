"""m9's Hydra sweepers, one module each (its settings, registered in Hydra's ConfigStore as ``hydra/sweeper=NAME``,
and its thin class): ``grid`` (``hydra/sweeper=m9``, the default: every combination, checked whole before anything
launches), ``boundary`` (the largest stable value of one knob) and ``optimize`` (the fastest configuration of a space
of knobs). What they share is in ``_base``; their work is in ``m9.sweep``."""
