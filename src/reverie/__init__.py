"""Reverie: physical world models (JEPA) that plan, imagine, and notice the impossible."""

__version__ = "0.1.0"


def __getattr__(name: str):  # lazy: collection workers must not pay for importing torch
    if name == "load_checkpoint":
        from reverie.checkpoint import load_checkpoint

        return load_checkpoint
    raise AttributeError(f"module 'reverie' has no attribute {name!r}")
