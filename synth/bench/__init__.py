"""The benchmark: methods x environments x seeds, its Ray backend and its tables."""
