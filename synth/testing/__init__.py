"""Offline stand-ins for an LLM endpoint, for tests and benchmarks (no network, no real model).

`llm_server.LLMTestServer`: a real OpenAI-compatible HTTP server on loopback
whose answers are scripted; `scripted_llm`: scripted models to plug into it.
"""
