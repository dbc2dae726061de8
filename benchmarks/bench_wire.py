"""Decoding cost per byte: hostile inputs against valid messages of the same size.

Every input goes through ``swimactors.wire.loads`` (what every network decoder calls),
hostile ones until refused.  The floor is a valid message of about the same size decoded
the same way, in the same run, interleaved; ratios above 1 mean the attacker's bytes cost
more than an honest peer's.  Medians of repeated runs.
"""

from __future__ import annotations

import contextlib
import statistics
import struct
import time
from collections.abc import Callable
from typing import Any

from fuzz.hostile import sharing_bomb
from swimactors import wire
from swimactors.membership.messages import MemberState, PushPull, encode_message, encode_packet
from swimactors.membership.types import Status

Row = dict[str, Any]


def _push_pull(members: int) -> bytes:
    rows = tuple(
        MemberState.of(f"node-{i}", ("10.0.0.1", 7000 + i % 50000), 1_733_000_000_000 + i,
                       Status.UP, b"")
        for i in range(members)
    )  # fmt: skip
    return encode_packet("", "a", [encode_message(PushPull(False, True, rows, {}))], ("h", 1))


def _text(value: str) -> bytes:
    raw = value.encode()
    return b"\x7a" + struct.pack(">I", len(raw)) + raw


def _array(items: bytes, count: int) -> bytes:
    return b"\x9a" + struct.pack(">I", count) + items * count


def _cases(size: int) -> dict[str, bytes]:
    """Hostile inputs of about ``size`` bytes (or the attack's own size)."""
    regex = b"\xd8\x23" + _text("(a+)+$")
    most = min(size, wire.DEFAULT_MAX_ITEMS) - 5  # items within the limit, the costliest
    return {
        "regex tags (35)": _array(regex, size // len(regex)),
        "MIME tags (36)": _array(b"\xd8\x24" + _text("Content-Type: text/plain\n\nx"), size // 32),
        "value-sharing bomb (28/29)": sharing_bomb(23),
        "empty arrays (most items allowed)": _array(b"\x80", most),
        "small integers (most items allowed)": _array(b"\x01", most),
        "deep nesting": b"\x81" * (size - 1) + b"\x00",
    }


def _per_byte(decode: Callable[[bytes], object], data: bytes, repeats: int) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        with contextlib.suppress(wire.WireError):
            decode(data)
    return (time.perf_counter() - started) / repeats / len(data) * 1e9


def run(quick: bool) -> list[Row]:
    rows: list[Row] = []
    rounds = 3 if quick else 9
    limits = wire.Limits(max_bytes=1 << 24)
    for label, valid in (("datagram-sized", _push_pull(28)), ("frame of 20,000 members",
                                                               _push_pull(20_000))):  # fmt: skip
        size = len(valid)
        repeats = max(1, 2_000_000 // size)
        cases = _cases(size)
        samples: dict[str, list[float]] = {name: [] for name in ["valid", *cases]}
        for _ in range(rounds):  # interleaved: the floor shares each round's conditions
            samples["valid"].append(_per_byte(lambda d: wire.loads(d, limits), valid, repeats))
            for name, data in cases.items():
                samples[name].append(_per_byte(lambda d: wire.loads(d, limits), data, repeats))
        floor = statistics.median(samples["valid"])
        for name in cases:
            value = statistics.median(samples[name])
            rows.append({
                "benchmark": "wire",
                "metric": f"{name}, {label} ({len(cases[name]):,} B)",
                "value": value,
                "unit": "ns/B",
                "floor": floor,
                "ratio": value / floor,
                "note": f"floor: a valid push/pull of {size:,} B",
            })  # fmt: skip
    return rows
