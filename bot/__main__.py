"""``python -m bot`` does what the ``whymoji`` console script does."""

from bot.cli import main

raise SystemExit(main())
