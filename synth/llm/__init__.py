"""The LLM side of synthesis: client, typed errors, responses, response cache, budget, code extraction."""
