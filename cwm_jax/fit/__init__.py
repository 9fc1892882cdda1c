"""Fitting the module-level constants of a CWM by gradient."""
