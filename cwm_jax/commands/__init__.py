"""The application: every `cwm-jax` subcommand, the exit-status rule, the printed reports.

The only code in `cwm_jax` that imports `synth`; nothing in the library imports it."""
