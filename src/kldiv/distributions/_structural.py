"""Structural distributions: Independent, Deterministic (Delta), MixtureSameFamily."""

__all__: list[str] = []
