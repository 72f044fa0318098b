"""``python -m kldiv``: the ``kldiv`` command."""

import sys

from kldiv.cli import main

if __name__ == "__main__":
    sys.exit(main())
