"""Render a node's counters in the Prometheus text exposition format (version 0.0.4).

Per-kind counters from the core (``sent_ping``, ``bytes_sent_ping``, ``received_ack``,
``rejected_malformed``) become one family each with a label; every other counter is
exported as ``swimactors_<name>_total``, so new counters show up without code changes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["PREFIX", "family", "render_metrics"]

PREFIX = "swimactors"

_LABELLED = (
    # (counter-name prefix, family, label, help)
    ("bytes_sent_", "message_bytes_sent_total", "type", "Bytes of messages sent, by type."),
    ("sent_", "messages_sent_total", "type", "Messages sent, by type."),
    ("received_", "messages_received_total", "type", "Messages received, by type."),
    ("rejected_", "packets_rejected_total", "reason", "Packets dropped, by reason."),
)
_HELP = {
    "probe_failures": "Probes that got no ack, directly or indirectly.",
    "suspicions_raised": "Members this node started suspecting.",
    "suspicions_refuted": "Suspicions of other members refuted by them.",
    "refutations": "Suspicions of this node that it refuted.",
    "packets_sent": "Packets sent (datagrams and stream frames).",
    "packets_received": "Packets received (datagrams and stream frames).",
    "bytes_sent": "Bytes of packets sent.",
    "bytes_received": "Bytes of packets received.",
}
_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def family(lines: list[str], name: str, kind: str, help_text: str) -> None:
    """Append the ``# HELP`` and ``# TYPE`` lines of one metric family."""
    lines.append(f"# HELP {PREFIX}_{name} {help_text}")
    lines.append(f"# TYPE {PREFIX}_{name} {kind}")


def render_metrics(
    members_by_status: Mapping[str, int],
    counters: Mapping[str, int],
    awareness: int,
    gauges: Mapping[str, int] | None = None,
    extra: str = "",
) -> str:
    """The ``/metrics`` page for one node; ``gauges`` are exported as they are
    (``swimactors_<name>``), e.g. ``quorum_serving``."""
    lines: list[str] = []
    family(lines, "members", "gauge", "Members in this node's view, by status.")
    for status, count in sorted(members_by_status.items()):
        lines.append(f'{PREFIX}_members{{status="{_label_value(status)}"}} {count}')
    family(lines, "awareness", "gauge", "Lifeguard local health score (0 = healthy).")
    lines.append(f"{PREFIX}_awareness {awareness}")
    for key, value in sorted((gauges or {}).items()):
        name = _UNSAFE.sub("_", key)
        family(lines, name, "gauge", key.replace("_", " ").capitalize() + ".")
        lines.append(f"{PREFIX}_{name} {value}")

    plain: dict[str, int] = {}
    grouped: dict[int, list[tuple[str, int]]] = {i: [] for i in range(len(_LABELLED))}
    for key, value in sorted(counters.items()):
        for index, (prefix, *_rest) in enumerate(_LABELLED):
            if key.startswith(prefix) and len(key) > len(prefix):
                grouped[index].append((key[len(prefix) :], value))
                break
        else:
            plain[key] = value
    for index, (_prefix, metric, label, help_text) in enumerate(_LABELLED):
        if grouped[index]:
            family(lines, metric, "counter", help_text)
            for label_value, value in grouped[index]:
                lines.append(f'{PREFIX}_{metric}{{{label}="{_label_value(label_value)}"}} {value}')
    for key, value in plain.items():
        name = _UNSAFE.sub("_", key) + "_total"
        family(lines, name, "counter", _HELP.get(key, key.replace("_", " ").capitalize() + "."))
        lines.append(f"{PREFIX}_{name} {value}")
    return "\n".join(lines) + "\n" + extra
