"""The play protocol's wire format: JSON text in (checked), JSON text out (always valid), images.

Kept apart from ``session.py`` so the session holds only what a session does; everything here is
a pure function of its arguments.

    msg = parse_message(raw, limit=65536)        # dict with a string "type", or ValueError
    dumps_reply({"type": "frame", "state": [float("nan")]})  # '{"type":"frame","state":[null]}'
    encode_image(frame)                          # uint8 (Hi, Wi, 3) -> base64 of raw RGB bytes

Images are base64 of raw RGB bytes (``image_size``² × 3): at 64 px that is ~25 µs to encode
against ~0.3 ms for PNG, and the page draws it with one ``putImageData``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

import numpy as np


def encode_image(frame: np.ndarray) -> str:
    """uint8 (Hi, Wi, 3) → base64 of its raw RGB bytes (what the page draws)."""
    return base64.b64encode(np.ascontiguousarray(frame, np.uint8).tobytes()).decode("ascii")


def decode_image(data: str, size: int) -> np.ndarray:
    """Inverse of ``encode_image`` (tests and the benchmark use it)."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"not a base64 image: {e}") from None
    return np.frombuffer(raw, np.uint8).reshape(size, size, 3)


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float, however deeply nested, replaced by None.

    JSON has no NaN/inf and the page's ``JSON.parse`` rejects them: a diverged number anywhere in
    a reply (a state, a factor, a cost) must become null, not an exception that drops the session.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value


def dumps_reply(msg: dict[str, Any]) -> str:
    """One reply as compact JSON text; never fails on a non-finite number (see ``json_safe``)."""
    return json.dumps(json_safe(msg), allow_nan=False, separators=(",", ":"))


def parse_message(raw: str | bytes | None, limit: int) -> dict[str, Any]:
    """An incoming WebSocket message → a JSON object with a string "type" (else ``ValueError``)."""
    if isinstance(raw, (bytes, bytearray)):
        raise ValueError("binary messages are not accepted: send JSON text")
    if not isinstance(raw, str):
        raise ValueError("empty message")
    if len(raw) > limit:  # chars ≥ bytes/4; cheap first check before encoding
        raise ValueError(f"message of {len(raw)} characters exceeds the {limit}-byte limit")
    if len(raw.encode("utf-8", "replace")) > limit:
        raise ValueError(f"message exceeds the {limit}-byte limit")
    try:
        msg = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"malformed JSON: {e}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ValueError('a message must be a JSON object with a string "type"')
    return msg


def action_from(
    msg: dict[str, Any], raw_dim: int, keymap: dict[str, tuple[float, ...]]
) -> np.ndarray:
    """An action message → a raw env action in [-1, 1]: ``"action"`` as given, or summed keys."""
    if "action" in msg:
        a = msg["action"]
        if (
            not isinstance(a, list)
            or len(a) != raw_dim
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in a)
            or not all(math.isfinite(v) for v in a)
        ):
            raise ValueError(f'"action" must be a list of {raw_dim} finite numbers')
        return np.clip(np.asarray(a, np.float64), -1.0, 1.0)
    keys = msg.get("keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) and k in keymap for k in keys):
        raise ValueError(f'"keys" must be a list drawn from {list(keymap)}')
    a = np.zeros(raw_dim)
    for k in set(keys):
        a += keymap[k]
    return np.clip(a, -1.0, 1.0)


def point_from(msg: dict[str, Any], where: str) -> tuple[float, float] | None:
    """``msg[where]`` (or ``msg`` itself when ``where`` is empty) as a point in [0, 1]², if any."""
    p = msg.get(where, msg) if where else msg
    if not isinstance(p, dict) or "x" not in p:
        return None
    x, y = p.get("x"), p.get("y")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y)):
        raise ValueError(f"{where or 'point'} x and y must be numbers in [0, 1]")
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise ValueError(f"{where or 'point'} x and y must be in [0, 1], got ({x}, {y})")
    return float(x), float(y)
