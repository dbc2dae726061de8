"""Mutual TLS set-up for the TCP channels (actor connections and push/pull), for teams
with a PKI: the stdlib ``ssl`` contexts both ends use, and the node names a certificate
carries.

Each node's certificate names the node in its subjectAltName (a DNS name, or an IP
address for a node named by one), and is signed by a CA both ends trust.  Both ends show
a certificate (TLS 1.3, ``CERT_REQUIRED`` on both sides); host names are not checked
(peers are dialled by address), the node name is, by the transports: a peer whose
certificate does not name the node it claims to be is refused.
"""

from __future__ import annotations

import ipaddress
import ssl
from typing import Any

import attrs
from cryptography import x509

from ..errors import SwimactorsError

__all__ = ["TlsConfig", "TlsError", "certificate_names"]


class TlsError(SwimactorsError, ValueError):
    """A TLS file is missing or unusable, or this node's certificate does not name it."""


def certificate_names(peer_certificate: dict[str, Any] | None) -> frozenset[str]:
    """The node names a verified peer certificate (``SSLObject.getpeercert()``) carries:
    its subjectAltName DNS names and IP addresses."""
    if not peer_certificate:
        return frozenset()
    names = set()
    for kind, value in peer_certificate.get("subjectAltName", ()):
        if kind == "DNS":
            names.add(str(value))
        elif kind == "IP Address":  # OpenSSL spells IPv6 in full, upper case
            try:
                names.add(str(ipaddress.ip_address(str(value).strip())))
            except ValueError:
                continue
    return frozenset(names)


def _context(purpose: ssl._SSLMethod, cert: str, key: str, ca: str) -> ssl.SSLContext:
    context = ssl.SSLContext(purpose)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        context.load_cert_chain(cert, key)
        context.load_verify_locations(ca)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot load the TLS files ({cert}, {key}, {ca}): {exc}") from None
    context.check_hostname = False  # the node name is checked instead, by the transports
    context.verify_mode = ssl.CERT_REQUIRED  # on the server side too: mutual TLS
    if purpose == ssl.PROTOCOL_TLS_SERVER:
        context.num_tickets = 0  # connections are never resumed: no session tickets
    return context


def _own_names(cert: str) -> frozenset[str]:
    try:
        with open(cert, "rb") as file:
            certificate = x509.load_pem_x509_certificate(file.read())
        alternatives = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except x509.ExtensionNotFound:
        return frozenset()
    except (OSError, ValueError) as exc:
        raise TlsError(f"cannot read the certificate {cert}: {exc}") from None
    dns = alternatives.get_values_for_type(x509.DNSName)
    ips = alternatives.get_values_for_type(x509.IPAddress)
    return frozenset([*dns, *(str(ip) for ip in ips)])


@attrs.frozen(kw_only=True)
class TlsConfig:
    """This node's certificate (PEM, chain first: its subjectAltName names the node), its
    private key, and the CA certificates peers' certificates must chain to.  The files are
    read once, here: a bad one is a :class:`TlsError` at once, not at the first peer."""

    cert: str
    key: str
    ca: str
    server: ssl.SSLContext = attrs.field(init=False, repr=False, eq=False)
    """The context for connections this node accepts."""
    client: ssl.SSLContext = attrs.field(init=False, repr=False, eq=False)
    """The context for connections this node dials."""
    names: frozenset[str] = attrs.field(init=False, eq=False)
    """The node names this node's own certificate carries."""

    def __attrs_post_init__(self) -> None:
        server = _context(ssl.PROTOCOL_TLS_SERVER, self.cert, self.key, self.ca)
        client = _context(ssl.PROTOCOL_TLS_CLIENT, self.cert, self.key, self.ca)
        object.__setattr__(self, "server", server)
        object.__setattr__(self, "client", client)
        object.__setattr__(self, "names", _own_names(self.cert))

    def check_names(self, node: str) -> None:
        """Raise :class:`TlsError` unless this node's certificate names ``node`` (its
        peers would refuse it)."""
        if node not in self.names:
            shown = ", ".join(sorted(self.names)) or "no subjectAltName"
            raise TlsError(f"the certificate {self.cert} names {shown}, not the node {node!r}")
