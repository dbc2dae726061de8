"""DNS discovery against a DNS server this test runs on loopback: ``dns://`` (A records)
and ``dns+srv://`` (SRV), re-resolved on every join attempt."""

from __future__ import annotations

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
import trio

from swimactors.agent.cluster import open_local_cluster, wait_until
from swimactors.agent.discovery import DnsSeed, parse_dns_seed, resolve_seeds
from swimactors.membership.types import Address, format_address
from tests.network.fast import OVERRIDES

pytestmark = pytest.mark.network


class DnsServer:
    """Answers A and SRV questions from ``records`` (changeable while it runs)."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}
        self.questions = 0

    async def serve(self, *, task_status: trio.TaskStatus[Address]) -> None:
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        with sock:
            await sock.bind(("127.0.0.1", 0))
            task_status.started(sock.getsockname())
            while True:
                data, peer = await sock.recvfrom(4096)
                query = dns.message.from_wire(data)
                reply = dns.message.make_response(query)
                question = query.question[0]
                name = question.name.to_text().rstrip(".")
                kind = dns.rdatatype.to_text(question.rdtype)
                self.questions += 1
                values = self.records.get((name, kind))
                if values:
                    reply.answer.append(
                        dns.rrset.from_text_list(question.name, 5, "IN", kind, values)
                    )
                elif not any(n == name for n, _ in self.records):
                    reply.set_rcode(dns.rcode.NXDOMAIN)
                await sock.sendto(reply.to_wire(), peer)


def test_dns_seed_syntax() -> None:
    assert parse_dns_seed("dns://swim.local:7000") == DnsSeed("swim.local", srv=False, port=7000)
    assert parse_dns_seed("dns://swim.local") == DnsSeed("swim.local", srv=False, port=7946)
    assert parse_dns_seed("dns+srv://_g._udp.swim.") == DnsSeed("_g._udp.swim", srv=True, port=0)
    with pytest.raises(ValueError, match="dns://NAME"):
        parse_dns_seed("dns:///x")


async def test_resolving_a_and_srv_records() -> None:
    server = DnsServer()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            at = await nursery.start(server.serve)
            server.records[("swim.test", "A")] = ["127.0.0.1", "127.0.0.2"]
            server.records[("_g._udp.swim.test", "SRV")] = ["0 5 7001 n1.swim.test."]
            server.records[("n1.swim.test", "A")] = ["127.0.0.3"]
            found = await resolve_seeds(
                ["dns://swim.test:7000", "dns+srv://_g._udp.swim.test", "10.0.0.1:1"], at
            )
            assert sorted(found[:2]) == [("127.0.0.1", 7000), ("127.0.0.2", 7000)]
            assert found[2:] == [("127.0.0.3", 7001), ("10.0.0.1", 1)]
            assert await resolve_seeds(["dns://nowhere.test"], at) == []
            nursery.cancel_scope.cancel()


async def test_agent_joins_through_srv_records_resolved_again_on_retry() -> None:
    """The SRV record first names a port where nobody listens; once it names a real
    member, the retrying agent (resolving anew each time) joins it."""
    server = DnsServer()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            at = await nursery.start(server.serve)
            async with open_local_cluster(overrides=OVERRIDES) as cluster:
                a = await cluster.start("a")
                server.records[("_swim._udp.svc.test", "SRV")] = ["0 5 9 pod.svc.test."]
                server.records[("pod.svc.test", "A")] = ["127.0.0.1"]
                b = await cluster.start(
                    "b",
                    extra_args=[
                        "--join",
                        "dns+srv://_swim._udp.svc.test",
                        "--dns-server",
                        format_address(at),
                    ],
                )
                await trio.sleep(1.5)
                asked = server.questions
                assert asked > 0
                assert await b.statuses() == {"b": "up"}  # port 9: nobody there
                server.records[("_swim._udp.svc.test", "SRV")] = [
                    f"0 5 {a.gossip[1]} pod.svc.test."
                ]

                async def joined() -> bool:
                    return await b.statuses() == {"a": "up", "b": "up"}

                assert await wait_until(joined, 20) is not None
                assert server.questions > asked
            nursery.cancel_scope.cancel()
