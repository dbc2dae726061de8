"""``python -m swimactors``: the same as the ``swimactors`` command."""

import sys

from .cli import main

sys.exit(main())
