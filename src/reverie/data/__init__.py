"""Datasets of (frame, action) episodes: collection, the on-disk format, and windowed loading.

Imports are kept light (no torch) so collection workers start fast; import the submodules:
``reverie.data.collect``, ``.format``, ``.dataset``, ``.inspect``.
"""
