"""The scenario suite for swimactors' simulator; run it with ``python -m sims``."""
