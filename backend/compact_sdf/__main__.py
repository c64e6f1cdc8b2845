"""``python -m compact_sdf`` is the same as the ``compact-sdf`` console script."""

from compact_sdf.cli import main

raise SystemExit(main())
