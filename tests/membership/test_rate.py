"""The token bucket that bounds how often a peer can make a node work."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from swimactors.membership.rate import TokenBucket


def test_a_full_bucket_allows_rate_takes_then_refills_at_rate() -> None:
    bucket = TokenBucket(4, now=10.0)
    assert [bucket.take(10.0) for _ in range(5)] == [True, True, True, True, False]
    assert not bucket.take(10.2)  # 0.8 of a token
    assert bucket.take(10.25)
    assert [bucket.take(20.0) for _ in range(5)] == [True, True, True, True, False]


def test_a_burst_deeper_than_the_rate() -> None:
    bucket = TokenBucket(2, now=0.0, burst=10)
    assert sum(bucket.take(0.0) for _ in range(12)) == 10
    assert [bucket.take(0.5), bucket.take(0.5)] == [True, False]  # refilled at rate
    assert sum(bucket.take(100.0) for _ in range(12)) == 10  # and never past the burst


def test_a_clock_that_steps_back_refills_nothing() -> None:
    bucket = TokenBucket(1, now=5.0)
    assert bucket.take(5.0)
    assert not bucket.take(1.0)


@given(
    rate=st.integers(1, 50),
    extra=st.integers(0, 50),
    gaps=st.lists(st.floats(0, 2, allow_nan=False), max_size=200),
)
def test_takes_never_exceed_the_rate_over_any_stretch(
    rate: int, extra: int, gaps: list[float]
) -> None:
    burst = rate + extra
    bucket, now, taken = TokenBucket(rate, burst=burst), 0.0, []
    for gap in gaps:
        now += gap
        if bucket.take(now):
            taken.append(now)
    for i, start in enumerate(taken):  # within [start, end]: at most burst + rate x length
        for j in range(i, len(taken)):
            assert j - i + 1 <= burst + rate * (taken[j] - start) + 1e-6
