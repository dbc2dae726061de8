"""Mechanism 10: Config presets follow memberlist's Default{LAN,WAN,Local}Config; invalid
values are refused with a message naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from swimactors.membership import Config, ConfigError

LAN = {
    "probe_interval": 1.0,
    "probe_timeout": 0.5,
    "indirect_checks": 3,
    "suspicion_mult": 4,
    "suspicion_max_timeout_mult": 6,
    "retransmit_mult": 4,
    "gossip_interval": 0.2,
    "gossip_nodes": 3,
    "gossip_to_the_dead_time": 30.0,
    "push_pull_interval": 30.0,
    "awareness_max_multiplier": 8,
    "buddy_first": True,
    "tcp_timeout": 10.0,
    "packet_budget": 1400,
    "max_meta_size": 512,
    "label": "",
}
WAN = LAN | {
    "tcp_timeout": 30.0,
    "suspicion_mult": 6,
    "push_pull_interval": 60.0,
    "probe_timeout": 3.0,
    "probe_interval": 5.0,
    "gossip_nodes": 4,
    "gossip_interval": 0.5,
    "gossip_to_the_dead_time": 60.0,
}
LOCAL = LAN | {
    "tcp_timeout": 1.0,
    "indirect_checks": 1,
    "retransmit_mult": 2,
    "suspicion_mult": 3,
    "push_pull_interval": 15.0,
    "probe_timeout": 0.2,
    "probe_interval": 1.0,
    "gossip_interval": 0.1,
    "gossip_to_the_dead_time": 15.0,
}


@pytest.mark.parametrize(("name", "values"), [("lan", LAN), ("wan", WAN), ("local", LOCAL)])
def test_presets_carry_memberlists_defaults(name: str, values: dict[str, Any]) -> None:
    for config in (getattr(Config, name)(), Config.preset(name)):
        assert {field: getattr(config, field) for field in values} == values
    assert Config() == Config.lan()


def test_an_unknown_preset_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError, match="lan"):
        Config.preset("moon")


def test_replace_changes_fields_and_validates() -> None:
    config = Config.lan().replace(probe_interval=2.0, label="blue")
    assert (config.probe_interval, config.label, config.probe_timeout) == (2.0, "blue", 0.5)
    with pytest.raises(ConfigError, match="no_such_knob"):
        Config.lan().replace(no_such_knob=1)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("probe_interval", 0),
        ("probe_interval", -1.0),
        ("probe_interval", float("nan")),
        ("probe_interval", float("inf")),
        ("probe_interval", "1"),
        ("probe_interval", True),
        ("probe_timeout", 0.0),
        ("gossip_interval", -0.2),
        ("gossip_to_the_dead_time", 0),
        ("push_pull_interval", 0),
        ("reap_time", -5),
        ("reconnect_interval", 0),
        ("tcp_timeout", 0),
        ("indirect_checks", -1),
        ("indirect_checks", 1.5),
        ("gossip_nodes", -1),
        ("suspicion_mult", 0),
        ("suspicion_max_timeout_mult", 0),
        ("retransmit_mult", 0),
        ("awareness_max_multiplier", 0),
        ("buddy_first", 1),
        ("buddy_first", None),
        ("push_pull_scale_threshold", 0),
        ("push_pull_max_scale", 0),
        ("packet_budget", 0),
        ("packet_budget", 255),
        ("max_meta_size", -1),
        ("label", 5),
        ("label", "x" * 256),
    ],
)
def test_invalid_values_are_refused_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=field):
        Config.lan().replace(**{field: value})
    with pytest.raises(ValueError):  # ConfigError is a ValueError
        Config(**{field: value})


def test_a_probe_timeout_longer_than_the_interval_is_refused() -> None:
    with pytest.raises(ConfigError, match="probe_timeout"):
        Config.lan().replace(probe_timeout=1.5)
    Config.lan().replace(probe_timeout=1.0)  # equal is allowed


def test_a_zero_indirect_checks_or_gossip_nodes_is_valid() -> None:
    Config.lan().replace(indirect_checks=0, gossip_nodes=0)
