"""The network model: latency, loss, duplication, size limit, reliable order, rules."""

from __future__ import annotations

import pytest

from swimactors.sim import Action, LinkModel, Network, Rule, Streams


def network(seed: int = 1, **link: float) -> Network:
    return Network(Streams(seed), LinkModel(**link), max_datagram=1400)


def test_latency_is_base_plus_nonnegative_jitter() -> None:
    net = network(latency=0.010, jitter=0.002)
    arrivals = [net.route(5.0, "a", "b", 100, False).deliveries[0] for _ in range(2000)]
    delays = [t - 5.0 for t in arrivals]
    assert min(delays) >= 0.010
    assert 0.0115 < sum(delays) / len(delays) < 0.0125  # mean jitter 2 ms


def test_loss_and_duplication_rates_follow_the_model() -> None:
    net = network(loss=0.2, duplicate=0.1)
    routes = [net.route(0.0, "a", "b", 100, False) for _ in range(20_000)]
    lost = sum(1 for r in routes if r.dropped == "loss") / len(routes)
    doubled = sum(1 for r in routes if len(r.deliveries) == 2) / len(routes)
    assert 0.18 < lost < 0.22
    assert 0.07 < doubled < 0.09  # 10 % of the 80 % that survive


def test_oversized_datagram_is_dropped_but_a_frame_of_that_size_is_not() -> None:
    net = network()
    assert net.route(0.0, "a", "b", 1401, False).dropped == "oversize"
    assert net.route(0.0, "a", "b", 1400, False).dropped is None
    assert net.route(0.0, "a", "b", 100_000, True).dropped is None


def test_reliable_channel_is_in_order_and_never_lost() -> None:
    net = network(loss=0.3, latency=0.001, jitter=0.050)
    arrivals = [net.route(i * 0.001, "a", "b", 10, True).deliveries[0] for i in range(500)]
    assert arrivals == sorted(arrivals)
    datagrams = [net.route(i * 0.001, "a", "b", 10, False) for i in range(500)]
    assert 100 < sum(1 for r in datagrams if r.dropped == "loss") < 200


def test_reliable_channel_retransmits_lost_frames_late() -> None:
    net = network(loss=0.5, latency=0.001, jitter=0.0)
    delays = [net.route(i * 10.0, "a", "b", 10, True).deliveries[0] - i * 10.0 for i in range(1000)]
    on_time = sum(1 for d in delays if d == pytest.approx(0.001))
    once = sum(1 for d in delays if d == pytest.approx(0.201))
    twice = sum(1 for d in delays if d == pytest.approx(0.601))  # 0.2 then 0.4
    assert 450 < on_time < 550 and 200 < once < 300 and 90 < twice < 160


def test_reordering_lets_later_datagrams_overtake() -> None:
    net = network(jitter=0.0, reorder=0.5, reorder_window=0.05)
    arrivals = [net.route(i * 0.001, "a", "b", 10, False).deliveries[0] for i in range(200)]
    assert arrivals != sorted(arrivals)


def test_symmetric_and_one_way_partitions_then_heal() -> None:
    net = network()
    net.partition(["a"], ["b"])
    assert net.route(0, "a", "b", 10, False).dropped == "partition"
    assert net.route(0, "b", "a", 10, True).dropped == "partition"  # connection fails
    assert net.route(0, "a", "c", 10, False).dropped is None
    net.heal()
    net.partition(["a"], ["b"], one_way=True)
    assert net.route(0, "a", "b", 10, False).dropped == "partition"
    assert net.route(0, "b", "a", 10, False).dropped is None
    net.heal()
    assert net.route(0, "a", "b", 10, False).dropped is None


def test_rule_chain_pass_stops_before_a_later_drop() -> None:
    net = network(jitter=0.0, latency=0.001)
    net.add_rule(Rule(action=Action.PASS, src={"a"}, dst={"b"}))
    net.add_rule(Rule(action=Action.DROP, src={"a"}))
    assert net.route(0, "a", "b", 10, False).dropped is None
    assert net.route(0, "a", "c", 10, False).dropped == "rule"


def test_rule_chain_delay_and_duplicate_accumulate() -> None:
    net = network(jitter=0.0, latency=0.001)
    net.add_rule(Rule(action=Action.DELAY, delay=0.5))
    handle = net.add_rule(Rule(action=Action.DUPLICATE, dst={"b"}))
    route = net.route(1.0, "a", "b", 10, False)
    assert route.deliveries == pytest.approx((1.501, 1.501))
    assert len(net.route(1.0, "a", "b", 10, True).deliveries) == 1  # streams never duplicate
    net.remove_rule(handle)
    assert len(net.route(1.0, "a", "b", 10, False).deliveries) == 1


def test_probabilistic_rule_draws_from_its_own_stream() -> None:
    """Adding a rule must not shift the network's own draws (named sub-streams)."""
    plain, ruled = network(seed=7, loss=0.3), network(seed=7, loss=0.3)
    ruled.add_rule(Rule(action=Action.DELAY, delay=0.0, probability=0.5))
    for _ in range(300):
        assert plain.route(0, "a", "b", 10, False) == ruled.route(0, "a", "b", 10, False)


def test_rule_validation_gives_clear_errors() -> None:
    with pytest.raises(ValueError, match="probability"):
        Rule(action=Action.DROP, probability=1.5)
    with pytest.raises(ValueError, match="latency"):
        LinkModel(latency=-1.0)
