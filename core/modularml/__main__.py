"""``python -m modularml``: the same command line as the ``modularml`` script."""

from modularml.cli import main

raise SystemExit(main())
