"""Validating CWM source: the contract, the static validator and its rules, and the loader."""
