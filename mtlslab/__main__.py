"""``python -m mtlslab``."""

from __future__ import annotations

from mtlslab.cli import main

raise SystemExit(main())
