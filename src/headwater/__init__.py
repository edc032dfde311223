"""headwater: ML and data pipelines as Python classes (Metaflow's API, much faster)."""

__version__ = "0.1.0"
