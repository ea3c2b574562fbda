"""`python -m iftscope` is the same as the `iftscope` command."""

from iftscope.cli import main

raise SystemExit(main())
