"""Hostile CBOR: the inputs of issue 12's attacks, built here so tests and benchmarks share them."""

from __future__ import annotations

import struct

__all__ = ["HOSTILE", "sharing_bomb", "wrap"]


def sharing_bomb(levels: int = 23) -> bytes:
    """Value sharing (tags 28/29): each level a shared list holding the previous one
    twice, so a resolving decoder hands back a DAG whose walk doubles per level."""
    data = b"\xd8\x1c\x80"  # shareable(28) []
    for level in range(levels):
        ref = b"\xd8\x1d" + (bytes([level]) if level < 24 else b"\x18" + bytes([level]))
        data = b"\xd8\x1c\x83" + data + ref + ref
    return data


def _text(text: str) -> bytes:
    raw = text.encode()
    return b"\x79" + struct.pack(">H", len(raw)) + raw


def wrap(item: bytes, depth: int = 1) -> bytes:
    """``item`` inside ``depth`` one-element arrays."""
    return b"\x81" * depth + item


HOSTILE: dict[str, bytes] = {
    "sharing_bomb": sharing_bomb(),
    "shared_ref_alone": b"\xd8\x1d\x00",
    "regex": b"\xd8\x23" + _text("(a+)+$" * 40),
    "mime": b"\xd8\x24" + _text("Content-Type: multipart/mixed; boundary=x\n\n" + "--x\n" * 60),
    "datetime": b"\xc0" + _text("2013-03-21T20:04:00Z"),
    "bignum": b"\xc2\x49" + b"\x01" + b"\x00" * 8,
    "huge_bignum": b"\xc2\x5a\x00\x00\x04\x00" + b"\xff" * 1024,
    "unknown_tag": b"\xdb" + b"\xff" * 8 + b"\x00",
    "self_describe": b"\xd9\xd9\xf7\x80",
    "set": b"\xd9\x01\x02\x83\x01\x02\x03",
    "stringref_namespace": b"\xd9\x01\x00\x82\x63abc\xd8\x19\x00",
    "indefinite_array": b"\x9f\x01\x02\xff",
    "indefinite_bytes": b"\x5f\x41a\x41b\xff",
    "reserved_info": b"\x1c",
    "deep_nesting": wrap(b"\x00", 10_000),
    "claimed_huge_array": b"\x9b" + b"\x7f" + b"\xff" * 7,
    "claimed_huge_map": b"\xbb" + b"\x7f" + b"\xff" * 7,
    "claimed_huge_bytes": b"\x5b" + b"\x7f" + b"\xff" * 7 + b"x",
    "int_keys": b"\xa3\x01\x00\x02\x00\x03\x00",
    "float_keys": b"\xa1\xf9\x3c\x00\x00",
    "array_key": b"\xa1\x81\x00\x00",
    "truncated": b"\x83\x01\x02",
    "trailing": b"\x01\x02",
    "bad_utf8": b"\x62\xff\xfe",
    "many_empty_maps": b"\x9a\x00\x04\x00\x00" + b"\xa0" * 0x40000,
}
"""Each refused by :func:`swimactors.wire.loads` (the ones within the byte limit, that is)."""
