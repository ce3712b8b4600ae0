"""Input/output names of the bundle's graphs (torch-free: the runtime needs them too)."""

from __future__ import annotations


def cache_names(n_layers: int) -> dict[str, list[str]]:
    """Per-layer cache tensor names, in the order the graphs take and return them."""
    r = range(n_layers)
    return {
        "cross": [n for i in r for n in (f"cross_k{i}", f"cross_v{i}")],
        "past": [n for i in r for n in (f"past_k{i}", f"past_v{i}")],
        "new": [n for i in r for n in (f"new_k{i}", f"new_v{i}")],
    }
