"""CBOR on the wire: typed message registries, size-budgeted packets and stream frames.

Nothing here pickles.  A message crosses the wire as a CBOR array ``[tag, field, ...]`` and
is decoded only into a class registered under that tag, with every field checked against
its annotation.  Decoders are total: hostile bytes come back as a :class:`WireError` that
the caller counts and drops.

Every decoder in the library goes through :func:`loads`, which accepts only the CBOR
subset the wire defines (see docs/protocol.md): definite lengths, no semantic tags at all
(value sharing, regexes, MIME, dates, ... are refused, never resolved), map keys that are
text or bytes, within a :class:`Limits` of bytes, items and nesting depth.
"""

from __future__ import annotations

import io
import keyword
import math
import operator
import struct
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

import attrs
import cbor2

from .errors import SwimactorsError

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_FRAME",
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_PACKET_BUDGET",
    "FRAME_LIMITS",
    "FrameDecoder",
    "Limits",
    "Loader",
    "Newcomers",
    "ReceiveBudget",
    "TypeRegistry",
    "WireError",
    "cbor_array_header",
    "cbor_uint",
    "check_plain",
    "encode_frame",
    "loads",
]

DEFAULT_PACKET_BUDGET = 1400
"""Bytes a datagram may carry: below a 1500-byte Ethernet MTU with IP/UDP headers, so no
packet ever fragments (memberlist's ``UDPBufferSize`` is the same figure)."""

DEFAULT_MAX_FRAME = 16 * 1024 * 1024
"""Largest stream frame accepted; a header announcing more closes the connection."""

MAX_PLAIN_DEPTH = 32
"""Nesting limit for free-form (``Any``) values."""

DEFAULT_MAX_ITEMS = 1 << 18
"""CBOR items (every scalar, string, array, map key and value) one message may hold.

262,144 items cover a push/pull of ~30,000 members (8 items each) and bound what one
message can build to ~20 MB (an empty map, the costliest item, is 64 bytes of Python)."""

DEFAULT_MAX_DEPTH = 64
"""Nesting of arrays and maps: the envelopes use < 8, plain values :data:`MAX_PLAIN_DEPTH`."""

T = TypeVar("T")
Tag = TypeVar("Tag", int, str)
Converter = Callable[[Any], Any]
Encoder = Callable[[Any], Any]


class WireError(SwimactorsError, ValueError):
    """Bytes that do not decode into a registered, well-formed message."""

    reason = "malformed"
    """Why, as a drop counter names it (``rejected_<reason>``); subclasses refine it."""


@attrs.frozen
class Limits:
    """What one message may cost to decode: checked before any object is built."""

    max_bytes: int = DEFAULT_MAX_FRAME
    max_items: int = DEFAULT_MAX_ITEMS
    max_depth: int = DEFAULT_MAX_DEPTH


FRAME_LIMITS = Limits()
"""The limits of a stream frame (actor frames, push/pull, registry state)."""


class _Refused(Exception):
    """Raised inside cbor2 for a tag; surfaces as :class:`WireError`."""


def _refuse_tag(*_args: Any) -> Any:
    raise _Refused("semantic tags are not part of the wire format")


class _EveryTag(Mapping[int, Callable[..., Any]]):
    """cbor2's semantic decoders, overridden for every tag number: each one refuses.

    cbor2 resolves value sharing (28/29), regexes (35), MIME (36) and more itself, before
    any ``tag_hook``; a mapping that answers for every tag is what turns all of them off.
    """

    def __getitem__(self, tag: int) -> Callable[..., Any]:
        return _refuse_tag

    def __contains__(self, tag: object) -> bool:
        return True

    def __len__(self) -> int:
        return 0

    def __iter__(self) -> Iterator[int]:
        return iter(())


_NO_TAGS = _EveryTag()


class Tagged:
    """What a marking :class:`Loader` leaves in place of a tagged item: its content was
    read as plain data and dropped, never resolved.  No check accepts it as a value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<tagged item>"


TAGGED = Tagged()


def _mark_tag(*_args: Any) -> Tagged:
    return TAGGED


class _MarkEveryTag(_EveryTag):
    """Semantic decoders that put :data:`TAGGED` in place of every tagged item."""

    def __getitem__(self, tag: int) -> Callable[..., Any]:
        return _mark_tag


_MARK_TAGS = _MarkEveryTag()


def loads(data: bytes | bytearray | memoryview, limits: Limits = FRAME_LIMITS) -> Any:
    """Decode one CBOR item of the wire's subset within ``limits``; :class:`WireError` if not.

    Bytes are checked first; items are counted by a header scan only when the message is
    longer than ``limits.max_items`` (every item takes at least one byte, so shorter ones
    cannot hold too many); depth is bounded by the decoder as it descends.
    """
    return Loader(limits).loads(data)


class Loader:
    """:func:`loads` with its decoder made once: for one owner (a connection) that decodes
    many messages, one after another (not shared between threads)."""

    __slots__ = ("_checked_above", "_decoder", "limits")

    def __init__(self, limits: Limits = FRAME_LIMITS, *, mark_tags: bool = False) -> None:
        """``mark_tags``: a tagged item becomes :data:`TAGGED` instead of failing the
        whole message (for a framed protocol that drops one bad value, not its stream)."""
        self.limits = limits
        self._checked_above = min(limits.max_bytes, limits.max_items)
        """No size check or header scan for data this long or shorter (one test)."""
        self._decoder = cbor2.CBORDecoder(
            io.BytesIO(),
            semantic_decoders=_MARK_TAGS if mark_tags else _NO_TAGS,
            tag_hook=_mark_tag if mark_tags else _refuse_tag,
            max_depth=limits.max_depth,
            allow_indefinite=False,
            strict_hashable_types=True,
        )

    def loads(self, data: bytes | bytearray | memoryview) -> Any:
        """What :func:`loads` says of ``data``, under this loader's limits."""
        if len(data) > self._checked_above:
            limits = self.limits
            if len(data) > limits.max_bytes:
                raise WireError(
                    f"message of {len(data)} bytes exceeds the {limits.max_bytes}-byte limit"
                )
            if len(data) > limits.max_items:
                scan(data, limits)
        stream = self._decoder.fp = io.BytesIO(data)
        try:
            value = self._decoder.decode()
        except Exception as exc:  # cbor2 raises several types; all mean "bad bytes"
            raise WireError(f"malformed CBOR: {exc}") from None
        if stream.tell() != len(data):
            raise WireError("trailing bytes after the CBOR item")
        return value


_INFO_SIZE = (0,) * 24 + (1, 2, 4, 8)
"""Bytes of argument after an initial byte, by its low five bits (24..27: 1, 2, 4, 8)."""


def scan(data: bytes | bytearray | memoryview, limits: Limits = FRAME_LIMITS) -> int:
    """Walk the CBOR headers of ``data`` without building anything; the item count.

    Raises :class:`WireError` for anything outside the wire's subset (tags, indefinite
    lengths, reserved values, truncation, trailing bytes) or beyond ``limits``; its cost
    is a few operations per item, whatever the items claim.
    """
    view = memoryview(data).cast("B")
    end, pos, items, depth = len(view), 0, 0, 0
    max_items, max_depth = limits.max_items, limits.max_depth
    pending: list[int] = []  # items still to read in each open container
    left = 1
    while True:
        if not left:
            if not pending:
                break
            left = pending.pop()
            depth -= 1
            continue
        if pos >= end:
            raise WireError("truncated CBOR")
        initial = view[pos]
        major, info = initial >> 5, initial & 31
        pos += 1
        left -= 1
        items += 1
        if info < 24:
            argument = info
        elif info < 28:
            size = _INFO_SIZE[info]
            if pos + size > end:
                raise WireError("truncated CBOR")
            argument = int.from_bytes(view[pos : pos + size], "big")
            pos += size
        else:
            raise WireError("indefinite lengths and reserved values are not accepted")
        if major < 2:
            continue
        if major < 4:
            pos += argument
            if pos > end:
                raise WireError("truncated CBOR")
            continue
        if major == 6:
            raise WireError("semantic tags are not part of the wire format")
        if major == 7:  # simple values and floats: nothing follows
            continue
        if major == 5:
            argument *= 2
        if items + argument > max_items:
            raise WireError(f"more than {max_items} CBOR items")
        if argument:
            depth += 1
            if depth > max_depth:
                raise WireError(f"nested deeper than {max_depth}")
            pending.append(left)
            left = argument
    if pos != end:
        raise WireError("trailing bytes after the CBOR item")
    if items > max_items:  # a lone scalar: containers were checked by what they claim
        raise WireError(f"more than {max_items} CBOR items")
    return items


def dumps(value: Any) -> bytes:
    """CBOR of a plain value (no checks: for values this node built itself)."""
    return cbor2.dumps(value)


def _cbor_head(major: int, value: int) -> bytes:
    """A CBOR initial byte of ``major`` type with its argument ``value`` (0 <= value < 2**64)."""
    if value < 24:
        return bytes([major | value])
    if value < 0x100:
        return bytes([major | 24, value])
    if value < 0x10000:
        return bytes([major | 25]) + struct.pack(">H", value)
    if value < 0x100000000:
        return bytes([major | 26]) + struct.pack(">I", value)
    return bytes([major | 27]) + struct.pack(">Q", value)


def cbor_array_header(length: int) -> bytes:
    """The CBOR major-type-4 header for a definite array of ``length`` items."""
    if 0 <= length < 24:  # a packet's few messages: one byte, made once
        return _SHORT_ARRAY_HEADS[length]
    return _cbor_head(0x80, length)


_SHORT_ARRAY_HEADS = tuple(bytes([0x80 | length]) for length in range(24))


cbor_uint: Callable[[int], bytes] = cbor2.dumps
"""``dumps`` of an unsigned integer below 2**64 (the protocol's hand-made frames use it
for their counts and correlation ids): cbor2's C encoder, with no Python call around it."""


def check_plain(value: Any, depth: int = 0) -> Any:
    """Accept only plain CBOR data (None, bool, int, float, str, bytes, list, dict).

    Used for fields typed ``Any``: it keeps decoded tags (datetimes, sets, shared values)
    out of user code and bounds nesting, which also rejects cyclic structures.
    """
    if depth > MAX_PLAIN_DEPTH:
        raise WireError("value nested too deeply")
    if value is None or isinstance(value, bool | float | str | bytes):
        return value
    if isinstance(value, int):
        if not -(2**64) <= value < 2**64:
            raise WireError("integers on the wire are 64-bit (bignum tags are refused)")
        return value
    if isinstance(value, list):
        return [check_plain(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {_plain_key(k): check_plain(v, depth + 1) for k, v in value.items()}
    raise WireError(f"unsupported value of type {type(value).__name__}")


def _check_sendable(value: Any, depth: int = 0) -> None:
    """:class:`WireError` unless ``value`` encodes as plain CBOR (what :func:`check_plain`
    accepts, tuples too: they go as arrays); checked before sending a field typed ``Any``."""
    if depth > MAX_PLAIN_DEPTH:
        raise WireError("value nested too deeply")
    if value is None or isinstance(value, bool | float | str | bytes | bytearray):
        return
    if isinstance(value, int):
        if not -(2**64) <= value < 2**64:
            raise WireError("integers on the wire are 64-bit (bignum tags are refused)")
    elif isinstance(value, list | tuple):
        for item in value:
            _check_sendable(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _plain_key(key)
            _check_sendable(item, depth + 1)
    else:
        raise WireError(f"unsupported value of type {type(value).__name__}")


def _plain_key(key: Any) -> str | bytes:
    """Map keys are text or bytes: their hashes are seeded, so no key set can collide."""
    if isinstance(key, str | bytes):
        return key
    raise WireError(f"map keys must be text or bytes, not {type(key).__name__}")


@attrs.frozen
class _Codec:
    """How to turn one field's value into CBOR data and back."""

    encode: Encoder
    decode: Converter
    kind: type | None = None
    """Set when decoding only checks that the value is exactly this type."""
    check: Callable[[Any], object] | None = None
    """In a checking registry, what refuses (:class:`WireError`) a field value that
    would go out in a form the wire refuses (an integer past 64 bits, a tagged value)."""


def _identity(value: Any) -> Any:
    return value


def _check_int(value: Any) -> None:
    if type(value) is int and not -(2**64) <= value < 2**64:
        raise WireError("integers on the wire are 64-bit (bignum tags are refused)")


def _checks_each(check: Callable[[Any], object]) -> Callable[[Any], None]:
    def check_each(values: Iterable[Any]) -> None:
        for value in values:
            check(value)

    if check is not _check_int:
        return check_each

    def check_ints(values: Iterable[Any], low: int = -(2**64), high: int = 2**64) -> None:
        """Integers within 64 bits: the smallest and the largest (compared in C) are
        enough; items that do not compare (not all numbers) are checked one by one."""
        try:
            if not values or (low <= min(values) and max(values) < high):
                return
        except TypeError:
            pass
        check_each(values)

    return check_ints


def _scalar(kind: type, name: str) -> _Codec:
    def decode(value: Any) -> Any:
        if type(value) is not kind:
            raise WireError(f"expected {name}, got {type(value).__name__}")
        return value

    return _Codec(_identity, decode, kind)


def _decode_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WireError(f"expected float, got {type(value).__name__}")
    result = float(value)
    if not math.isfinite(result):
        raise WireError("expected a finite float")
    return result


def _decode_plain(value: Any) -> Any:
    return check_plain(value)


def _is_plain(value: Any) -> bool:
    try:
        check_plain(value)
    except WireError:
        return False
    return True


class TypeRegistry(Generic[Tag]):
    """Tag <-> attrs class table; encodes instances and decodes arrays into instances.

    Each registry is its own namespace: membership uses small integer tags (cheap on the
    wire), the actor layer uses stable string names.
    """

    def __init__(self, name: str, *, checked: bool = False) -> None:
        self.name = name
        self.checked = checked
        """Encoding refuses field values the wire refuses (:class:`WireError`) before
        any byte is made: for classes whose instances users build (actor messages); a
        registry whose values the node builds itself within its bounds skips the checks."""
        self._by_tag: dict[Tag, type] = {}
        self._tag_of: dict[type, Tag] = {}
        self._fields: dict[type, tuple[tuple[str, _Codec], ...]] = {}
        self._required: dict[type, int] = {}
        self._extra: dict[Any, _Codec] = {}
        self._decoders: dict[type, Converter] = {}
        self.builders: dict[Tag, Converter] = {}
        """By tag, what :meth:`from_data` does with a whole ``[tag, field, ...]`` (for
        the tags it has met; read-only for callers that decode many in a row)."""
        self._encoders: dict[type, Callable[[Any], list[Any]]] = {}
        self._to_bytes: dict[bytes, dict[type, Callable[[Any], bytes]]] = {b"": {}}
        """By head (see :meth:`encoder`), by class, what encodes an instance to bytes."""
        self._flat: dict[type, tuple[int, Callable[[Any], bytes]] | None] = {}
        self._flat_builders: dict[Any, tuple[int, Callable[[list[Any]], list[Any]]] | None] = {}

    def register(self, tag: Tag) -> Callable[[type[T]], type[T]]:
        """Class decorator: register an attrs class under ``tag``."""

        def decorate(cls: type[T]) -> type[T]:
            self.add(tag, cls)
            return cls

        return decorate

    def add(self, tag: Tag, cls: type) -> None:
        """Register the attrs class ``cls`` under ``tag`` (ValueError if the tag names another)."""
        if not attrs.has(cls):
            raise TypeError(f"{cls.__qualname__} must be an attrs class to go on the wire")
        if tag in self._by_tag and self._by_tag[tag] is not cls:
            raise ValueError(
                f"{self.name}: tag {tag!r} already names {self._by_tag[tag].__qualname__}"
            )
        self._by_tag[tag] = cls
        self._tag_of[cls] = tag
        self._fields.pop(cls, None)
        self._decoders.pop(cls, None)
        self.builders.pop(tag, None)
        self._encoders.pop(cls, None)
        for table in self._to_bytes.values():
            table.pop(cls, None)
        self._flat.pop(cls, None)
        self._flat_builders.pop(tag, None)

    def add_codec(self, hint: Any, encode: Encoder, decode: Converter) -> None:
        """Teach this registry a field annotation it cannot derive (e.g. a handle type).

        ``encode`` turns a value into plain CBOR data; ``decode`` turns data back and
        raises :class:`WireError` on anything malformed.  Affects classes checked later.
        """
        self._extra[hint] = _Codec(encode, decode)

    def check(self, cls: type) -> None:
        """Raise TypeError unless every field annotation of ``cls`` has a wire codec."""
        try:
            self._codecs(cls)
        except NameError as exc:
            raise TypeError(f"{cls.__qualname__}: cannot resolve an annotation ({exc})") from None
        except TypeError as exc:
            raise TypeError(f"{cls.__qualname__} cannot be a message: {exc}") from None

    def tag_of(self, cls: type) -> Tag:
        """The tag ``cls`` is registered under (KeyError if none)."""
        return self._tag_of[cls]

    def is_registered(self, cls: type) -> bool:
        """Whether ``cls`` has a tag here."""
        return cls in self._tag_of

    def __contains__(self, tag: object) -> bool:
        return isinstance(tag, (int, str)) and not isinstance(tag, bool) and tag in self._by_tag

    # -- encoding ----------------------------------------------------------------------

    def to_data(self, obj: Any) -> list[Any]:
        """The CBOR-ready ``[tag, field, ...]`` list for a registered instance."""
        cls: type = type(obj)
        try:
            tag = self._tag_of[cls]
        except KeyError:
            raise TypeError(f"{cls.__qualname__} is not registered in {self.name}") from None
        return [tag, *self._fields_to_data(cls, obj)]

    def encode(self, obj: Any) -> bytes:
        """``dumps(self.to_data(obj))``, byte for byte (see :meth:`encoder`)."""
        encode = self.encoder(type(obj))
        if encode is None:
            raise TypeError(f"{type(obj).__qualname__} is not registered in {self.name}")
        return encode(obj)

    def encoder(self, cls: type, head: bytes = b"") -> Callable[[Any], bytes] | None:
        """What :meth:`encode` does for instances of ``cls`` (None if not registered),
        with ``head`` before it: the head, the array's head and the tag encoded once per
        class, the fields in one ``dumps``."""
        table = self.encoders(head)
        encode = table.get(cls)
        if encode is None and cls in self._tag_of:
            encode = table[cls] = self._compile_to_bytes(cls, head)
        return encode

    def encoders(self, head: bytes = b"") -> dict[type, Callable[[Any], bytes]]:
        """The :meth:`encoder` of each class made so far for ``head``, by class (read-only
        for a caller that encodes many: one lookup per instance)."""
        table = self._to_bytes.get(head)
        if table is None:
            table = self._to_bytes[head] = {}
        return table

    def _compile_to_bytes(self, cls: type, head: bytes) -> Callable[[Any], bytes]:
        codecs = self._codecs(cls)
        prefix = head + cbor_array_header(1 + len(codecs)) + dumps(self._tag_of[cls])
        if not codecs:
            return lambda obj: prefix
        return self._fields_after(cls, prefix)

    def _fields_after(self, cls: type, prefix: bytes) -> Callable[[Any], bytes]:
        """What encodes an instance of ``cls`` (at least one field) as ``prefix``, then its
        fields one after another with no array around them."""
        return _encode_fields(cls, prefix, self._codecs(cls))

    def flat_encoder(self, cls: type, most: int) -> tuple[int, Callable[[Any], bytes]] | None:
        """For a registered class that takes its fields positionally, at least one and at
        most ``most`` of them: how many, and what encodes an instance's fields one after
        another with no array around them (each field one CBOR item, nested or not: what
        :meth:`flat_builder` builds from); None for any other class."""
        if cls not in self._flat:
            parts = self._flat_parts(cls) if cls in self._tag_of else None
            if parts is None or not 0 < len(parts) <= most:
                self._flat[cls] = None
            else:
                self._flat[cls] = (len(parts), self._fields_after(cls, b""))
        return self._flat[cls]

    def flat_builder(self, tag: Any, width: int) -> Callable[[list[Any]], list[Any]] | None:
        """What builds instances of ``tag``'s class from their fields laid end to end,
        ``width`` per instance (:meth:`flat_encoder`), up to the first whose fields do not
        decode (a scalar not of its exact type, a nested field its codec refuses) or
        which its class refuses; None unless ``tag`` names a class :meth:`flat_encoder`
        lays flat, of exactly ``width`` fields."""
        if tag not in self._flat_builders:
            by_tag: dict[Any, type] = self._by_tag  # any int or str may be asked for
            cls = by_tag.get(tag) if type(tag) is int or type(tag) is str else None
            parts = None if cls is None else self._flat_parts(cls)
            self._flat_builders[tag] = (
                None if cls is None or not parts else (len(parts), _build_flat(cls, parts))
            )
        known = self._flat_builders[tag]
        return known[1] if known is not None and known[0] == width else None

    def _flat_parts(self, cls: type) -> tuple[tuple[type | None, Converter], ...] | None:
        """Per field of ``cls``, when it takes them positionally: the exact type a scalar
        must have (None for others) and its codec's decode; None for other classes."""
        if not _positional(cls):
            return None
        return tuple((codec.kind, codec.decode) for _, codec in self._codecs(cls))

    def _fields_to_data(self, cls: type, obj: Any) -> list[Any]:
        encoder = self._encoders.get(cls)
        if encoder is None:
            encoder = self._encoders[cls] = self._compile_encoder(cls)
        return encoder(obj)

    def _compile_encoder(self, cls: type) -> Callable[[Any], list[Any]]:
        """``cls``'s field encoding with its codecs looked up once; when every field is
        plain data (the common small messages) one ``attrgetter`` reads them all."""
        codecs = self._codecs(cls)
        pairs = tuple((name, codec.encode) for name, codec in codecs)
        checks = _checks_of(codecs)
        if pairs and all(encode is _identity for _, encode in pairs):
            if len(pairs) == 1:
                name = pairs[0][0]

                def read_one(obj: Any) -> list[Any]:
                    return [getattr(obj, name)]

                return _checking(read_one, checks)
            read = operator.attrgetter(*(name for name, _ in pairs))
            return _checking(lambda obj: list(read(obj)), checks)

        def encode(obj: Any) -> list[Any]:
            return [encode_field(getattr(obj, name)) for name, encode_field in pairs]

        return _checking(encode, checks)

    # -- decoding ----------------------------------------------------------------------

    def from_data(self, data: Any) -> Any:
        """Build a registered instance from ``[tag, field, ...]``; :class:`WireError` if not."""
        if type(data) is not list or not data:
            raise WireError("a message must be a non-empty array")
        tag = data[0]
        builders: dict[Any, Converter] = self.builders  # any int or str may be asked for
        build = builders.get(tag) if type(tag) is int or type(tag) is str else None
        if build is None:
            build = self._builder(tag)
        return build(data)

    def from_data_if_known(self, data: Any) -> Any | None:
        """:meth:`from_data`, but None for ``[tag, ...]`` with a tag this registry does not
        know (a newer message type, which a reader may skip)."""
        if type(data) is list and data:
            tag = data[0]
            if type(tag) is not int and type(tag) is not str:  # (a bool or a float is no tag)
                return None
            builders: dict[Any, Converter] = self.builders  # any int or str may be asked for
            build = builders.get(tag)
            if build is not None:
                return build(data)
            if tag not in self._by_tag:
                return None
        return self.from_data(data)

    def _builder(self, tag: Any) -> Converter:
        """What :meth:`from_data` does for ``tag``'s class, compiled once per tag."""
        by_tag: dict[Any, type] = self._by_tag  # any int or str may be asked for
        cls = by_tag.get(tag) if type(tag) is int or type(tag) is str else None
        if cls is None:
            raise WireError(f"{self.name}: unknown message tag {tag!r}")
        decode = self._decoders.get(cls)
        if decode is None:
            decode = self._decoders[cls] = self._compile_decoder(cls)
        build = self.builders[tag] = self._compile_builder(cls, type(tag), decode)
        return build

    def decode(self, data: bytes, limits: Limits = FRAME_LIMITS) -> Any:
        """The registered instance ``data`` encodes (:class:`WireError` if it does not)."""
        return self.from_data(loads(data, limits))

    def _fields_from_data(self, cls: type, values: Sequence[Any]) -> Any:
        decoder = self._decoders.get(cls)
        if decoder is None:
            decoder = self._decoders[cls] = self._compile_decoder(cls)
        return decoder(values)

    def _compile_decoder(self, cls: type) -> Converter:
        """``cls``'s field decoding with its codecs looked up once, not per message."""
        codecs = self._codecs(cls)
        names = tuple(name for name, _ in codecs)
        decoders = tuple(codec.decode for _, codec in codecs)
        low, high, qualname = self._required[cls], len(codecs), cls.__qualname__
        positional = _positional(cls)

        def decode(values: Sequence[Any]) -> Any:
            if not low <= len(values) <= high:
                raise WireError(f"{qualname}: wrong number of fields ({len(values)})")
            args = [dec(v) for dec, v in zip(decoders, values, strict=False)]
            try:
                if positional:  # no keyword dict to build for the usual attrs class
                    return cls(*args)
                return cls(**dict(zip(names, args, strict=False)))
            except WireError:  # a validator's own typed refusal, kept for the caller
                raise
            except (TypeError, ValueError) as exc:
                raise WireError(f"{qualname}: {exc}") from None

        kinds = self._scalar_kinds(cls)
        return decode if kinds is None else _build_scalars(cls, kinds, decode, 0)

    def _scalar_kinds(self, cls: type) -> tuple[type, ...] | None:
        """The exact type of each field when every field is a scalar and ``cls`` takes
        them positionally (instances can then be built straight from a decoded list)."""
        kinds = [codec.kind for _, codec in self._codecs(cls)]
        if not _positional(cls) or None in kinds:
            return None
        return tuple(kind for kind in kinds if kind is not None)

    def _compile_builder(self, cls: type, tag_type: type, decode: Converter) -> Converter:
        kinds: tuple[type, ...] | None = self._scalar_kinds(cls)
        if kinds is not None:
            return _build_scalars(cls, (tag_type,) + kinds, decode, 1)  # noqa: RUF005 (mypy)

        def build(data: Any) -> Any:
            return decode(data[1:])

        return build

    # -- value checks derived from annotations ------------------------------------------

    def checker(self, hint: Any) -> Callable[[Any], bool]:
        """Whether a value fits annotation ``hint`` as its codec would carry it (the test a
        sender makes before it sends; the receiver's decode makes the same one).  Raises
        TypeError where the annotation has no codec.  Nested attrs values are taken as
        built: their own fields are checked when they are decoded."""
        extra = self._extra.get(hint)
        if extra is not None:
            return lambda value: isinstance(value, hint)
        if hint is Any or hint is object:
            return _is_plain
        if hint in (bool, str, bytes):
            return lambda value: type(value) is hint
        if hint is int:
            return lambda value: type(value) is int and -(2**64) <= value < 2**64
        if hint is float:
            return lambda value: (
                (type(value) is float and math.isfinite(value))
                or (type(value) is int and -(2**64) <= value < 2**64)
            )
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if origin in (typing.Union, types.UnionType):
            self._optional_codec(hint, args)  # the same annotations as the codecs accept
            inner = self.checker(next(a for a in args if a is not type(None)))
            return lambda value: value is None or inner(value)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            items = [self.checker(a) for a in args]
            return lambda value: (
                isinstance(value, tuple | list)
                and len(value) == len(items)
                and all(check(v) for check, v in zip(items, value, strict=True))
            )
        if origin in (tuple, list):
            item = self.checker(args[0])
            return lambda value: isinstance(value, tuple | list) and all(map(item, value))
        if origin is dict:
            key, val = self.checker(args[0]), self.checker(args[1])
            return lambda value: (
                isinstance(value, dict) and all(key(k) and val(v) for k, v in value.items())
            )
        if isinstance(hint, type) and attrs.has(hint):
            return lambda value: isinstance(value, hint)
        raise TypeError(f"{self.name}: no wire codec for annotation {hint!r}")

    # -- field codecs derived from annotations -----------------------------------------

    def _codecs(self, cls: type) -> tuple[tuple[str, _Codec], ...]:
        cached = self._fields.get(cls)
        if cached is None:
            hints = typing.get_type_hints(cls)
            fields = attrs.fields(cls)
            cached = tuple((f.name, self._codec_for(hints[f.name])) for f in fields)
            self._fields[cls] = cached
            self._required[cls] = sum(1 for f in fields if f.default is attrs.NOTHING)
        return cached

    def _codec_for(self, hint: Any) -> _Codec:
        extra = self._extra.get(hint)
        if extra is not None:
            return extra
        if hint is Any or hint is object:
            return _Codec(_identity, _decode_plain, None, _check_sendable if self.checked else None)
        if hint is bool:
            return _scalar(bool, "bool")
        if hint is int:
            return attrs.evolve(_scalar(int, "int"), check=_check_int if self.checked else None)
        if hint is str:
            return _scalar(str, "str")
        if hint is bytes:
            return _scalar(bytes, "bytes")
        if hint is float:
            return _Codec(_identity, _decode_float)
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if origin in (typing.Union, types.UnionType):
            return self._optional_codec(hint, args)
        if origin is tuple:
            return self._tuple_codec(args)
        if origin is list:
            return self._sequence_codec(self._codec_for(args[0]), list)
        if origin is dict:
            return self._dict_codec(self._codec_for(args[0]), self._codec_for(args[1]))
        if isinstance(hint, type) and attrs.has(hint):
            return self._struct_codec(hint)
        raise TypeError(f"{self.name}: no wire codec for annotation {hint!r}")

    def _optional_codec(self, hint: Any, args: tuple[Any, ...]) -> _Codec:
        others = [a for a in args if a is not type(None)]
        if len(others) != 1 or len(args) != 2:
            raise TypeError(f"{self.name}: only `X | None` unions go on the wire, not {hint!r}")
        inner = self._codec_for(others[0])

        def encode(value: Any) -> Any:
            return None if value is None else inner.encode(value)

        def decode(value: Any) -> Any:
            return None if value is None else inner.decode(value)

        check = inner.check

        def check_present(value: Any) -> None:
            if value is not None and check is not None:
                check(value)

        return _Codec(encode, decode, None, check and check_present)

    def _tuple_codec(self, args: tuple[Any, ...]) -> _Codec:
        if len(args) == 2 and args[1] is Ellipsis:
            return self._sequence_codec(self._codec_for(args[0]), tuple)
        items = [self._codec_for(a) for a in args]
        checks = [(i, c.check) for i, c in enumerate(items) if c.check is not None]

        def encode(value: Any) -> Any:
            return [c.encode(v) for c, v in zip(items, value, strict=True)]

        def decode(value: Any) -> Any:
            if not isinstance(value, list) or len(value) != len(items):
                raise WireError(f"expected an array of {len(items)} items")
            return tuple([c.decode(v) for c, v in zip(items, value, strict=True)])

        def check(value: Any) -> None:
            for i, check_item in checks:
                check_item(value[i])

        checked = check if checks else None
        if all(c.encode is _identity for c in items):  # CBOR writes a tuple as an array
            return _Codec(_identity, decode, None, checked)
        return _Codec(encode, decode, None, checked)

    @staticmethod
    def _sequence_codec(item: _Codec, kind: type) -> _Codec:
        item_encode, item_decode, item_kind = item.encode, item.decode, item.kind

        def encode(value: Iterable[Any]) -> Any:
            return [item_encode(v) for v in value]

        def encode_as_is(value: Iterable[Any]) -> Any:
            """Items that encode as they are: a list goes as it is, anything else as a
            list of its items (what the wire decodes, a tuple too)."""
            return value if type(value) is list else list(value)

        def decode(value: Any) -> Any:
            if not isinstance(value, list):
                raise WireError("expected an array")
            return kind(item_decode(v) for v in value)

        only = frozenset({item_kind})

        def decode_scalars(value: Any) -> Any:
            """Items that are all exactly their scalar type are taken as they are (the
            list was built by the decoder for this message alone); else each is decoded,
            which says which is wrong."""
            if type(value) is list and set(map(type, value)) <= only:
                return value if kind is list else kind(value)
            return decode(value)

        return _Codec(
            encode_as_is if item_encode is _identity else encode,
            decode if item_kind is None else decode_scalars,
            None,
            item.check and _checks_each(item.check),
        )

    @staticmethod
    def _dict_codec(key: _Codec, val: _Codec) -> _Codec:
        def encode(value: dict[Any, Any]) -> Any:
            return {key.encode(k): val.encode(v) for k, v in value.items()}

        def encode_as_is(value: dict[Any, Any]) -> Any:
            return value if type(value) is dict else dict(value.items())

        def decode(value: Any) -> Any:
            if not isinstance(value, dict):
                raise WireError("expected a map")
            return {key.decode(k): val.decode(v) for k, v in value.items()}

        keys, values = frozenset({key.kind}), frozenset({val.kind})

        def decode_scalars(value: Any) -> Any:
            """As a sequence's (see :meth:`_sequence_codec`): a map whose keys and values
            are all exactly their scalar types is taken as it is."""
            if (
                type(value) is dict
                and set(map(type, value)) <= keys
                and set(map(type, value.values())) <= values
            ):
                return value
            return decode(value)

        check_key = key.check and _checks_each(key.check)
        check_value = val.check and _checks_each(val.check)

        def check(value: dict[Any, Any]) -> None:
            if check_key is not None:
                check_key(value.keys())
            if check_value is not None:
                check_value(value.values())

        checked = check if check_key or check_value else None
        identity = key.encode is _identity and val.encode is _identity
        scalars = key.kind is not None and val.kind is not None
        return _Codec(
            encode_as_is if identity else encode,
            decode_scalars if scalars else decode,
            None,
            checked,
        )

    def _struct_codec(self, cls: type) -> _Codec:
        """A nested attrs value: registered ones carry their tag, others are bare arrays."""
        if self.is_registered(cls):
            return _Codec(self.to_data, self._decode_tagged(cls))

        def encode(value: Any) -> Any:
            return self._fields_to_data(cls, value)

        def decode(value: Any) -> Any:
            if not isinstance(value, list):
                raise WireError(f"{cls.__qualname__}: expected an array")
            return self._fields_from_data(cls, value)

        return _Codec(encode, decode)

    def _decode_tagged(self, cls: type) -> Converter:
        def decode(value: Any) -> Any:
            obj = self.from_data(value)
            if not isinstance(obj, cls):
                raise WireError(f"expected {cls.__qualname__}, got {type(obj).__qualname__}")
            return obj

        return decode


Checks = tuple[tuple[int, Callable[[Any], object]], ...]
"""Where a class's checked fields are, and their checks (see ``_Codec.check``)."""


def _checks_of(codecs: tuple[tuple[str, _Codec], ...]) -> Checks:
    return tuple((i, codec.check) for i, (_, codec) in enumerate(codecs) if codec.check)


_DUMPS_EACH = 4
"""Fields up to which a ``dumps`` per field is cheaper than one of a tuple of them: cbor2
(6.x) pays about 0.4 µs for any container it writes, 0.14 µs a call (this machine,
2026-12-05: two ints 321 against 560 ns, three fields 484 against 609)."""


def _encode_fields(
    cls: type, prefix: bytes, codecs: tuple[tuple[str, _Codec], ...]
) -> Callable[[Any], bytes]:
    """``prefix``, then each field of ``cls`` encoded by its codec (and checked, after
    encoding, by its check) as CBOR, one after another: up to :data:`_DUMPS_EACH` fields
    a ``dumps`` each, more as one tuple (CBOR writes it as an array) in one ``dumps``,
    less the array's head.  Generated per class, as attrs generates ``__init__``: one
    attribute read per field, no list, no loop."""
    lines = ["def encode(obj):"]
    namespace: dict[str, Any] = {"prefix": prefix, "dumps": cbor2.dumps, "low": -(2**64)}
    for i, (name, codec) in enumerate(codecs):
        if name.isidentifier() and not keyword.iskeyword(name):
            lines.append(f"    f{i} = obj.{name}")
        else:
            namespace[f"name_{i}"] = name
            lines.append(f"    f{i} = getattr(obj, name_{i})")
        if codec.encode is not _identity:
            namespace[f"enc_{i}"] = codec.encode
            lines.append(f"    f{i} = enc_{i}(f{i})")
        if codec.check is not None:
            namespace[f"check_{i}"] = codec.check
            if codec.check is _check_int:  # the usual one, inline: a tell's hot path
                lines.append(f"    if type(f{i}) is int and not low <= f{i} < -low:")
                lines.append(f"        check_{i}(f{i})")
            else:
                lines.append(f"    check_{i}(f{i})")
    if len(codecs) <= _DUMPS_EACH:
        items = " + ".join(f"dumps(f{i})" for i in range(len(codecs)))
        lines.append(f"    return prefix + {items}")
    else:
        skip = len(cbor_array_header(len(codecs)))
        items = ", ".join(f"f{i}" for i in range(len(codecs)))
        lines.append(f"    return prefix + dumps(({items}))[{skip}:]")
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<wire encoder {cls.__qualname__}>", "exec"), namespace)
    encode: Callable[[Any], bytes] = namespace["encode"]
    return encode


def _checking(encode: Callable[[Any], list[Any]], checks: Checks) -> Callable[[Any], list[Any]]:
    """``encode``, then each check on its field (none: ``encode`` itself)."""
    if not checks:
        return encode

    def encode_checked(obj: Any) -> list[Any]:
        values = encode(obj)
        for i, check in checks:
            check(values[i])
        return values

    return encode_checked


def _build_scalars(cls: type, kinds: tuple[type, ...], decode: Converter, skip: int) -> Converter:
    """Build ``cls`` from a decoded list whose items' types are exactly ``kinds`` (the
    first ``skip`` of them not fields: a tag, already checked), else, or when a validator
    refuses, through ``decode`` (the full path, which says why).  Generated per class, as
    attrs generates ``__init__``: a check per field, no loop, no slice."""
    checks = " and ".join(
        [f"len(values) == {len(kinds)}"]
        + [f"type(values[{i}]) is kind_{i}" for i in range(skip, len(kinds))]
    )
    args = ", ".join(f"values[{i}]" for i in range(skip, len(kinds)))
    source = (
        "def build(values):\n"
        f"    if {checks}:\n"
        "        try:\n"
        f"            return cls({args})\n"
        "        except (TypeError, ValueError):\n"
        "            pass\n"
        f"    return decode(values[{skip}:])\n"
    )
    namespace: dict[str, Any] = {f"kind_{i}": kind for i, kind in enumerate(kinds)}
    namespace.update(cls=cls, decode=decode)
    exec(compile(source, f"<wire builder {cls.__qualname__}>", "exec"), namespace)
    build: Converter = namespace["build"]
    return build


def _build_flat(
    cls: type, parts: tuple[tuple[type | None, Converter], ...]
) -> Callable[[list[Any]], list[Any]]:
    """Build instances of ``cls`` from fields laid end to end, ``len(parts)`` each, while
    each scalar field's type is exactly its kind, each other field decodes (its codec's
    decode, which checks it as a ``TELL``'s value is checked) and the class takes them
    (a refusal ends the run there); generated per class, as :func:`_build_scalars` is."""
    names = ", ".join(f"f{i}" for i in range(len(parts)))
    groups = "it" if len(parts) == 1 else f"zip({', '.join(['it'] * len(parts))})"
    scalars = [i for i, (kind, _) in enumerate(parts) if kind is not None]
    checks = " and ".join(f"type(f{i}) is kind_{i}" for i in scalars) or "True"
    args = ", ".join(
        f"f{i}" if kind is not None else f"dec_{i}(f{i})" for i, (kind, _) in enumerate(parts)
    )
    source = (
        "def build_flat(fields):\n"
        "    built = []\n"
        "    append = built.append\n"
        "    it = iter(fields)\n"
        f"    for {names} in {groups}:\n"
        f"        if not ({checks}):\n"
        "            break\n"
        "        try:\n"
        f"            append(cls({args}))\n"
        "        except (TypeError, ValueError):  # a WireError too: a field refused\n"
        "            break\n"
        "    return built\n"
    )
    namespace: dict[str, Any] = {f"kind_{i}": kind for i, (kind, _) in enumerate(parts)}
    namespace.update({f"dec_{i}": decode for i, (_, decode) in enumerate(parts)})
    namespace["cls"] = cls
    exec(compile(source, f"<wire flat builder {cls.__qualname__}>", "exec"), namespace)
    build: Callable[[list[Any]], list[Any]] = namespace["build_flat"]
    return build


def _positional(cls: type) -> bool:
    """Whether ``cls`` takes every field positionally, in order (the usual attrs class)."""
    return all(f.init and not f.kw_only and f.alias == f.name for f in attrs.fields(cls))


# -- stream framing ------------------------------------------------------------------------

_LENGTH = struct.Struct(">I")


def encode_frame(payload: bytes) -> bytes:
    """A 4-byte big-endian length prefix followed by the payload."""
    return _LENGTH.pack(len(payload)) + payload


class FrameDecoder:
    """Sans-IO reassembly of length-prefixed frames from a byte stream.

    ``feed`` never raises: a header announcing more than ``max_frame`` bytes (more than
    ``first_frame`` for the stream's first frame, a greeting that must be small) sets
    :attr:`error`, after which the stream is poisoned and the owner should close it.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME, first_frame: int | None = None) -> None:
        self.max_frame = max_frame
        self.error: str | None = None
        self._buffer = bytearray()
        self._limit = max_frame if first_frame is None else min(first_frame, max_frame)
        """The limit on the next frame: ``first_frame`` until one has arrived."""

    def feed(self, data: bytes | bytearray) -> list[bytes]:
        """The frames completed by ``data``, in order (none once :attr:`error` is set)."""
        if self.error is not None:
            return []
        if not self._buffer and len(data) >= 4:  # the common case: exactly one frame
            (length,) = _LENGTH.unpack_from(data)
            if len(data) == 4 + length and length <= self._limit:
                self._limit = self.max_frame
                return [bytes(data[4:])]
        self._buffer += data
        frames: list[bytes] = []
        view = self._buffer
        start = 0
        while len(view) - start >= 4:
            (length,) = _LENGTH.unpack_from(view, start)
            if length > self._limit:
                self.error = f"frame of {length} bytes exceeds the {self._limit}-byte limit"
                self._buffer.clear()
                return frames
            end = start + 4 + length
            if end > len(view):
                break
            frames.append(bytes(view[start + 4 : end]))
            self._limit = self.max_frame
            start = end
        del self._buffer[:start]
        return frames

    def clear(self) -> None:
        """Forget the bytes held (the stream is closed): their memory goes at once, even
        while something still refers to the decoder."""
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._buffer)


K = TypeVar("K")


class ReceiveBudget(Generic[K]):
    """Bytes held in frames not yet complete, summed over one listener's connections, kept
    within ``limit``: past it the connections holding the most are to be dropped, so
    half-sent frames on many connections cannot hold more memory than that (each frame's
    deadline alone would let them hold it until the deadline)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._held: dict[K, int] = {}

    def hold(self, key: K, held: int) -> list[K]:
        """``key`` now holds ``held`` bytes: the keys to drop, largest first (``key``
        itself may be one), which are forgotten here."""
        self.release(key)
        if held:
            self._held[key] = held
            self.total += held
        over: list[K] = []
        while self.total > self.limit:
            largest = max(self._held, key=self._held.__getitem__)
            over.append(largest)
            self.release(largest)
        return over

    def release(self, key: K) -> None:
        """``key`` holds nothing any more (its frame completed, or it closed)."""
        self.total -= self._held.pop(key, 0)


class Newcomers(Generic[K]):
    """Connections accepted but not yet proven (a key or TLS handshake, a HELLO), at
    most ``total`` at once and ``per_source`` from one source address.  A newcomer past
    either bound takes the place of the oldest (from its own source first): a peer's
    handshake takes milliseconds, so only a stalled one grows old, and strangers that
    stall can neither hold more places nor lock a peer out by filling them."""

    def __init__(self, total: int, per_source: int) -> None:
        self.total = total
        self.per_source = per_source
        self._all: dict[K, str] = {}
        """Each newcomer's source, oldest first."""
        self._by_source: dict[str, dict[K, None]] = {}

    def __len__(self) -> int:
        return len(self._all)

    def arrive(self, key: K, source: str) -> K | None:
        """``key`` arrived from ``source``: the newcomer to drop to make room (forgotten
        here), or None."""
        same = self._by_source.setdefault(source, {})
        oldest = None
        if len(same) >= self.per_source:
            oldest = next(iter(same))
        elif len(self._all) >= self.total:
            oldest = next(iter(self._all))
        if oldest is not None:
            self.proven(oldest)
        self._all[key] = source
        self._by_source.setdefault(source, {})[key] = None
        return oldest

    def proven(self, key: K) -> None:
        """``key`` is no newcomer any more (proven, or closed)."""
        source = self._all.pop(key, None)
        if source is None:
            return
        same = self._by_source[source]
        del same[key]
        if not same:
            del self._by_source[source]
