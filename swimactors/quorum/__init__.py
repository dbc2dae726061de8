"""Split-brain resolution: which side of a partition keeps serving.

Sans-IO.  :mod:`.rules` holds the pure rules (a strategy maps one node's :class:`View`
to an :class:`Outcome`); :mod:`.tracker` holds the :class:`QuorumTracker`, which feeds a
rule from the membership a SWIM core reports, adds the stability timing that makes it
safe and hands back :class:`Decision` values for a driver to act on.
"""

from .rules import (
    AGE_KEY,
    DownAll,
    KeepMajority,
    KeepOldest,
    KeepReferee,
    MemberInfo,
    Outcome,
    QuorumConfigError,
    StaticQuorum,
    Strategy,
    View,
    age_meta,
    down_all,
    keep_majority,
    keep_oldest,
    keep_referee,
    member_info,
    parse_strategy,
    stable_after_for,
    static_quorum,
)
from .tracker import (
    QUORUM_CHANNEL,
    Decision,
    Phase,
    QuorumState,
    QuorumTracker,
    Verdict,
    describe,
)

__all__ = [
    "AGE_KEY",
    "QUORUM_CHANNEL",
    "Decision",
    "DownAll",
    "KeepMajority",
    "KeepOldest",
    "KeepReferee",
    "MemberInfo",
    "Outcome",
    "Phase",
    "QuorumConfigError",
    "QuorumState",
    "QuorumTracker",
    "StaticQuorum",
    "Strategy",
    "Verdict",
    "View",
    "age_meta",
    "describe",
    "down_all",
    "keep_majority",
    "keep_oldest",
    "keep_referee",
    "member_info",
    "parse_strategy",
    "stable_after_for",
    "static_quorum",
]
