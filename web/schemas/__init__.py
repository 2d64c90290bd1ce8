"""Pydantic request and response models of the HTTP API (also the OpenAPI schema)."""
