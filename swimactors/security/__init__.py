"""Keys, sealing of packets and frames (sans-IO) and TLS set-up; see docs/security.md."""

from .handshake import HandshakeError, SealedStream, StreamHandshake
from .keyring import Keyring, KeyringError, PlaintextPolicy, generate_key
from .packets import OVERHEAD, PacketSealer, Rejected
from .tls import TlsConfig, TlsError

__all__ = [
    "OVERHEAD",
    "HandshakeError",
    "Keyring",
    "KeyringError",
    "PacketSealer",
    "PlaintextPolicy",
    "Rejected",
    "SealedStream",
    "StreamHandshake",
    "TlsConfig",
    "TlsError",
    "generate_key",
]
