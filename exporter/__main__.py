"""`python -m exporter` is the `exporter` command."""

from exporter.cli import main

raise SystemExit(main())
