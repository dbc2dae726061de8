"""The fast timing the multi-process agent tests run with (``local`` profile, probes
every 0.2 s), and the membership config it amounts to, for their bounds."""

from __future__ import annotations

from swimactors.cli import config_from

OVERRIDES = {
    "probe_interval": 0.2,
    "probe_timeout": 0.1,
    "gossip_interval": 0.05,
    "push_pull_interval": 2.0,
    "reconnect_interval": 1.0,
}
CONFIG = config_from("local", [(k, str(v)) for k, v in OVERRIDES.items()])
