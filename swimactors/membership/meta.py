"""Member metadata convention: a CBOR map of short strings, at most 512 bytes encoded.

The core treats metadata as opaque bytes; the agent, the HTTP API and the actor system
use this convention so ``--meta role=web`` shows up as ``{"role": "web"}`` everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import wire

__all__ = ["decode_meta", "encode_meta"]


def encode_meta(values: Mapping[str, str]) -> bytes:
    """Encode a str -> str mapping (empty mapping -> empty bytes)."""
    if not values:
        return b""
    for key, value in values.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("metadata keys and values must be strings")
    return wire.dumps(dict(sorted(values.items())))


def decode_meta(data: bytes) -> dict[str, str]:
    """Decode metadata written by :func:`encode_meta`; other bytes give ``{"_raw": hex}``."""
    if not data:
        return {}
    try:
        value = wire.loads(data)
    except wire.WireError:
        value = None
    if isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return dict(value)
    return {"_raw": data.hex()}
