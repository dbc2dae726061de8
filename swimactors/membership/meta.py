"""Member metadata convention: a CBOR map of short strings, at most 512 bytes encoded.

The core treats metadata as opaque bytes; the agent, the HTTP API and the actor system
use this convention so ``--meta role=web`` shows up as ``{"role": "web"}`` everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from .. import wire

__all__ = ["REAP_KEY", "announced_reap", "decode_meta", "encode_meta"]

REAP_KEY = "reap"
"""Seconds peers keep this member's record once it has left or failed, if shorter than
their ``reap_time`` (a client, e.g. a command-line run, announces ``0``: forget me as soon
as it is safe).  Peers never forget before two push/pull periods (``Swim`` says why)."""


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


def announced_reap(meta: bytes) -> float | None:
    """The reap time ``meta`` announces under :data:`REAP_KEY`, if any (and valid)."""
    if REAP_KEY.encode() not in meta:  # most members announce none: no decoding
        return None
    try:
        seconds = float(decode_meta(meta).get(REAP_KEY, "nan"))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
