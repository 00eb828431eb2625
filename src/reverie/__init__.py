"""Reverie: physical world models (JEPA) that plan, imagine, and notice the impossible."""

__version__ = "0.1.0"
