"""``Config.cidrs_allowed`` (memberlist's ``CIDRsAllowed``): parsing and validation, and
the core's part, refusing a member whose advertised address is outside the list (the
socket transports' part, sources, is tested in tests/network/test_allowlist.py)."""

from __future__ import annotations

import ipaddress

import pytest

from swimactors.cli import config_from
from swimactors.membership import Config, ConfigError, Member, Status
from swimactors.membership.allowlist import CACHED, AllowList
from swimactors.membership.messages import Alive, MemberState, Ping, PushPull

from .util import add_peers, addr, deliver, make_core, member, packet, run, sent

UP = Status.UP
INSIDE = Config.lan().replace(cidrs_allowed=["10.0.0.0/24"])
"""The test peers (``addr(n)`` is 10.0.0.2:7000+n) are inside; 192.0.2.0/24 is not."""
OUTSIDE = ("192.0.2.7", 7000)


def test_by_default_every_address_is_allowed() -> None:
    for config in (Config.lan(), Config.wan(), Config.local()):
        assert config.cidrs_allowed is None and config.allow_list() is None
        for ip in ("127.0.0.1", "10.0.0.9", "192.168.2.1", "fe80::aede:48ff:fe00:1122", "::1"):
            assert config.ip_allowed(ip)


@pytest.mark.parametrize(
    ("allow", "success", "fail"),
    [  # memberlist's Test_IsValidAddressOverride
        ("0.0.0.0/0", ["127.0.0.5", "10.0.0.9", "192.168.1.7"], ["fe80::38bc:4dff:fe62:b1", "::1"]),
        ("::0/0", ["fe80::38bc:4dff:fe62:b1", "::1"], ["127.0.0.5", "10.0.0.9", "192.168.1.7"]),
        (
            ["::1/128", "127.0.0.0/8"],
            ["127.0.0.5", "::1"],
            ["::2", "178.250.0.187", "10.0.0.9", "192.168.1.7", "fe80::38bc:4dff:fe62:b1ae"],
        ),
    ],
)  # fmt: skip
def test_an_address_is_allowed_exactly_when_a_network_holds_it(
    allow: str | list[str], success: list[str], fail: list[str]
) -> None:
    config = Config.lan().replace(cidrs_allowed=allow)
    allowed = config.allow_list()
    assert allowed is not None
    for ip in success:
        assert config.ip_allowed(ip) and allowed(ip), ip
    for ip in fail:
        assert not config.ip_allowed(ip) and not allowed(ip), ip


def test_the_list_is_parsed_from_text_or_networks_and_host_bits_are_dropped() -> None:
    config = Config.lan().replace(cidrs_allowed=" 10.1.2.3/8 , fd00::/8")
    assert config.cidrs_allowed == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
    )
    assert Config.lan().replace(cidrs_allowed=config.cidrs_allowed) == config
    assert config.ip_allowed("::ffff:10.9.9.9")  # an IPv4-mapped source is its IPv4 address
    assert not config.ip_allowed("node1.example")  # a host name cannot be checked: refused
    assert config_from("lan", [("cidrs_allowed", "10.0.0.0/8,fd00::/8")]) == config


@pytest.mark.parametrize("bad", ["", "10.0.0.0/33", "nonsense", [], ["10.0.0.0/8", 7], 5, b"x"])
def test_a_bad_list_is_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(ConfigError, match="cidrs_allowed"):
        Config.lan().replace(cidrs_allowed=bad)


def test_verdicts_are_cached_and_the_cache_is_bounded() -> None:
    allowed = AllowList((ipaddress.ip_network("10.0.0.0/8"),))
    for i in range(CACHED + 10):
        allowed(f"10.0.{i // 256}.{i % 256}")
    assert len(allowed._verdicts) <= CACHED


# -- the core: advertised addresses ----------------------------------------------------------


def test_a_member_advertising_an_address_outside_the_list_is_refused_and_never_probed() -> None:
    core = make_core(config=INSIDE)
    add_peers(core, 2)
    deliver(core, 1.0, "p1", Alive("rogue", OUTSIDE, 1), Alive("p3", addr(3), 1))
    assert core.member("rogue") is None and member(core, "p3").status is UP
    assert core.counters["rejected_not_allowed"] == 1
    assert all(p.destination != OUTSIDE for _, p in run(core, 30.0))


def test_a_push_pull_entry_outside_the_list_is_refused() -> None:
    core = make_core(config=INSIDE)
    entries = (
        MemberState.of("p1", addr(1), 1, UP, b""),
        MemberState.of("rogue", OUTSIDE, 1, UP, b""),
    )
    deliver(core, 0.0, "p1", PushPull(True, False, entries, {}), reliable=True)
    assert [m.name for m in core.members()] == ["n0", "p1"]
    assert core.counters["rejected_not_allowed"] == 1


def test_a_stream_naming_an_address_outside_the_list_is_refused_whole_and_not_answered() -> None:
    """A push/pull's answer goes to the address its frame names, not to the connection's
    source (an ephemeral port): one naming an address outside is dropped, not answered."""
    core = make_core(config=INSIDE)
    entries = (MemberState.of("p1", addr(1), 1, UP, b""),)
    core.receive(0.0, addr(1), packet("p1", PushPull(True, False, entries, {}), reply_to=OUTSIDE))
    assert sent(core) == [] and core.member("p1") is None
    assert core.counters["rejected_not_allowed"] == 1
    core.receive(0.0, addr(1), packet("p1", PushPull(True, False, entries, {}), reply_to=addr(1)))
    assert [p.destination for p in sent(core)] == [addr(1)]


def test_a_known_member_cannot_move_outside_the_list() -> None:
    core = make_core(config=INSIDE)
    add_peers(core, 2)
    deliver(core, 1.0, "p2", Alive("p1", OUTSIDE, 5))  # (would be a conflict anyway)
    deliver(core, 1.0, "p2", Alive("p2", OUTSIDE, 5))
    assert member(core, "p1") == Member("p1", addr(1), 1, UP)
    assert member(core, "p2") == Member("p2", addr(2), 1, UP)
    assert core.counters["rejected_not_allowed"] == 2
    assert core.counters["name_conflicts"] == 0  # refused before it is weighed as a claim


def test_without_a_list_the_same_member_is_taken() -> None:
    core = make_core()
    add_peers(core, 1)
    deliver(core, 1.0, "p1", Alive("rogue", OUTSIDE, 1))
    assert member(core, "rogue").status is UP
    deliver(core, 1.0, "rogue", Ping(1, "n0"), source=OUTSIDE)
    assert [p.destination for p in sent(core)] == [OUTSIDE]  # (its ack)
