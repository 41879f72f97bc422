"""m9's Hydra sweepers: ``hydra/sweeper=m9`` (the default: a grid, checked whole before anything launches) and
``hydra/sweeper=boundary`` (a search for the largest stable value of one knob) and ``hydra/sweeper=optimize``
(the fastest configuration of a space of knobs). Their work is in ``m9.sweep``."""
