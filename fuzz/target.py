"""One atheris target: ``python -m fuzz.target NAME CORPUS_DIR [libFuzzer flags]``.

Feeds coverage-guided inputs to the decoder ``NAME`` of :data:`fuzz.decoders.DECODERS`; a
crash is any exception other than WireError, an input slower than ``-timeout`` seconds or
memory above ``-rss_limit_mb``.
"""

from __future__ import annotations

import contextlib
import sys

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["swimactors", "fuzz"]):
    from fuzz.decoders import DECODERS
    from swimactors import wire


def main() -> None:
    name, *flags = sys.argv[1:]
    decode = DECODERS[name].decode

    def one_input(data: bytes) -> None:
        with contextlib.suppress(wire.WireError):
            decode(data)

    atheris.Setup([sys.argv[0], *flags], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
