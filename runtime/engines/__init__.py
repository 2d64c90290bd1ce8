"""Execution engines: native (OpenAI-compatible agent loop), opencode, scripted."""
