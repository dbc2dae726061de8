"""Keys, sealing of packets and frames (sans-IO) and TLS set-up; see docs/security.md."""

from .keyring import Keyring, KeyringError, PlaintextPolicy, generate_key
from .packets import OVERHEAD, PacketSealer, Rejected

__all__ = [
    "OVERHEAD",
    "Keyring",
    "KeyringError",
    "PacketSealer",
    "PlaintextPolicy",
    "Rejected",
    "generate_key",
]
