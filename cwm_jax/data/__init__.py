"""Recorded transitions: recording from a source, the on-disk cache, the train/held-out split."""
