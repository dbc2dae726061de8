"""Whole-cluster behaviour of the core on a lossless in-memory loop."""

from __future__ import annotations

from swimactors.membership import Config, MemberDown, MemberSuspect, Status
from swimactors.membership.messages import Suspect

from .loop import Loop

CONFIG = Config.lan()


def converged_cluster(n: int, seed: int = 0) -> Loop:
    loop = Loop(CONFIG, seed=seed)
    for i in range(n):
        loop.add(f"n{i}")
    names = {f"n{i}" for i in range(n)}
    loop.run_until(30.0, until=lambda: all(v == names for v in loop.views(Status.UP).values()))
    assert all(v == names for v in loop.views(Status.UP).values()), loop.views(Status.UP)
    return loop


def test_ten_nodes_converge_to_ten_up() -> None:
    loop = converged_cluster(10)
    assert loop.now < 5.0  # joins through one seed plus push/pull: well within seconds


def test_a_silent_node_is_marked_down_everywhere_within_the_bound() -> None:
    loop = converged_cluster(10, seed=3)
    crash = loop.now
    loop.stop("n7")
    _, high = CONFIG.suspicion_timeouts(10)
    # two probe periods to notice (9 nodes probe in parallel, each over a shuffled list),
    # the longest suspicion timeout, then a few gossip rounds to spread the verdict
    bound = crash + 2 * CONFIG.probe_interval + high + 10 * CONFIG.gossip_interval
    reached = loop.run_until(bound + 30, until=lambda: loop.all_see("n7", Status.DOWN))
    assert loop.all_see("n7", Status.DOWN)
    assert reached - crash <= bound - crash, f"detected after {reached - crash:.2f}s"
    downs = [e for _, e in loop.events if isinstance(e, MemberDown)]
    assert {e.member.name for e in downs} == {"n7"}  # no false deaths
    first_suspect = min(
        e.time for _, e in loop.events if isinstance(e, MemberSuspect) and e.member.name == "n7"
    )
    print(f"first suspect {first_suspect - crash:.2f}s, all down {reached - crash:.2f}s")


def test_a_suspected_live_node_refutes_and_stays_up() -> None:
    loop = converged_cluster(5, seed=1)
    # n1 wrongly suspects n3 (as if its probe had been lost) and gossips it
    n1 = loop.by_name("n1")
    n3 = loop.by_name("n3")
    before = n3.incarnation

    n1._apply_suspect(loop.now, Suspect("n3", n3.incarnation, "n1"))
    loop.run_until(loop.now + 20.0)
    assert n3.incarnation > before
    assert loop.all_see("n3", Status.UP)
    assert not [e for _, e in loop.events if isinstance(e, MemberDown)]


def test_a_node_reachable_only_over_the_reliable_channel_is_never_suspected() -> None:
    loop = converged_cluster(6, seed=2)
    cut = loop.by_name("n3").address
    loop.drop = lambda src, packet: not packet.reliable and cut in (src, packet.destination)
    start = loop.now
    loop.run_until(start + 60.0)
    assert loop.all_see("n3", Status.UP)
    late = [e for _, e in loop.events if e.time > start]
    assert not [e for e in late if isinstance(e, MemberSuspect | MemberDown)]
    assert all(c.counters["probe_failures"] == 0 for c in loop.cores.values())
    # what tells an operator that datagrams to and from n3 are lost: probes answered over
    # the reliable channel only, by n3 and to n3 (memberlist logs "UDP probes failed")
    assert all(c.counters["reliable_probe_acks"] > 0 for c in loop.cores.values())


def test_a_healthy_cluster_answers_every_probe_by_datagram() -> None:
    loop = converged_cluster(6, seed=2)
    loop.run_until(loop.now + 30.0)
    assert all(c.counters["reliable_probe_acks"] == 0 for c in loop.cores.values())


def test_heavy_datagram_loss_causes_no_false_down() -> None:
    import random

    loop = converged_cluster(8, seed=9)
    lossy = random.Random(1)
    loop.drop = lambda src, packet: not packet.reliable and lossy.random() < 0.3
    start = loop.now
    loop.run_until(start + 120.0)
    assert all(len(v) == 8 for v in loop.views(Status.UP).values())
    assert not [e for _, e in loop.events if isinstance(e, MemberDown)]
