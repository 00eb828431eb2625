"""``python -m reverie ...`` is the ``reverie`` command (one grammar, one-line errors)."""

import sys

from reverie.cli import main

raise SystemExit(main(sys.argv[1:]))
