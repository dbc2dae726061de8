"""The book of singletons (sans-IO): what a node remembers, forgets and finds overdue,
and the retirement notice's codec."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from swimactors import wire
from swimactors.cluster.singletons import (
    MAX_FIELD,
    MAX_RETIRED,
    Singleton,
    SingletonBook,
    read_retirement,
    retirement,
    singleton_meta,
)
from swimactors.registry import Registration

field = st.text(min_size=1, max_size=40)


def registration(name: str, node: str = "n4", actor: str = "/user/c#1") -> Registration:
    meta = singleton_meta("counter")
    return Registration(name, node, 1, actor, meta, counter=1, clock=1)


class Registry:
    def __init__(self) -> None:
        self.held: dict[str, Registration] = {}

    def registered(self, name: str) -> bool:
        return name in self.held


def book_with(*held: Registration) -> tuple[SingletonBook, Registry, Counter[str]]:
    registry, counters = Registry(), Counter[str]()
    registry.held = {r.name: r for r in held}
    book = SingletonBook(registry.registered, counters)
    book.learn(registry.held.items(), 0.0)
    return book, registry, counters


@given(field, field, field)
def test_a_notice_reads_back(name: str, node: str, actor: str) -> None:
    assert read_retirement(retirement(name, node, actor)) == (name, node, actor)


@given(st.binary(max_size=64) | st.builds(wire.dumps, st.lists(st.integers() | field)))
def test_any_other_bytes_are_no_notice_and_never_raise(payload: bytes) -> None:
    notice = read_retirement(payload)
    assert notice is None or all(type(f) is str and f for f in notice)


def test_malformed_notices_are_counted_and_dropped() -> None:
    book, _, counters = book_with(registration("c"))
    for payload in (b"\xff", wire.dumps(["c", "n4"]), wire.dumps(["c", "n4", ""])):
        book.notify_message(payload, 1.0)
    book.notify_message(wire.dumps(["c", "n4", "x" * (MAX_FIELD + 1)]), 1.0)
    assert counters["rejected_retirements"] == 4 and "c" in book.remembered


def test_a_name_gone_stays_remembered_and_is_overdue_after_the_wait_on_a_confirmed_view() -> None:
    book, registry, _ = book_with(registration("c"))
    del registry.held["c"]
    book.learn(registry.held.items(), 10.0)
    book.hold_absences(11.0, confirmed=True)
    assert book.missing() == ["c"] and book.overdue(12.9, 3.0) == []
    assert book.overdue(13.0, 3.0) == ["c"] and book.next_due(3.0) == 13.0
    book.hold_absences(13.5, confirmed=False)  # a change pending: the wait starts again
    assert book.overdue(16.0, 3.0) == [] and book.next_due(3.0) == 16.5
    book.postpone("c", 17.0)  # re-creating it failed
    assert book.next_due(3.0) == 20.0
    registry.held["c"] = registration("c", node="n0", actor="/user/c#7")
    book.learn(registry.held.items(), 18.0)
    assert book.remembered["c"] == Singleton("counter", "n0", "/user/c#7")
    assert book.next_due(3.0) is None and book.missing() == []


def test_a_retirement_forgets_that_instance_only() -> None:
    book, registry, counters = book_with(registration("c"), registration("d"))
    assert not book.retire("c", "n4", "/user/c#2")  # another instance
    assert not book.retire("c", "n3", "/user/c#1")  # another node
    assert "c" in book.remembered
    book.notify_message(retirement("c", "n4", "/user/c#1"), 1.0)
    assert "c" not in book.remembered and counters["singletons_retired"] == 1
    book.learn(registry.held.items(), 2.0)  # its registration, still here, is not learnt again
    assert "c" not in book.remembered and "d" in book.remembered
    registry.held["c"] = registration("c", actor="/user/c#3")  # a new instance is
    book.learn(registry.held.items(), 3.0)
    assert book.remembered["c"].actor_id == "/user/c#3"


def test_retirements_are_bounded() -> None:
    book, _, _ = book_with()
    for index in range(MAX_RETIRED + 10):
        book.retire(f"s{index}", "n1", "/user/x#1")
    book.learn([("s0", registration("s0", "n1", "/user/x#1"))], 1.0)  # the oldest went
    book.learn([("s10", registration("s10", "n1", "/user/x#1"))], 1.0)  # the rest are kept
    assert list(book.remembered) == ["s0"]
