"""lqft_lab: a notebook-first lab for machine-learned sampling in lattice field theory."""

__version__ = "0.1.0"
