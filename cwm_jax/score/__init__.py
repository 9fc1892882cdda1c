"""Scoring a CWM: the vmapped comparison with recorded transitions, and the paper's scorer."""
