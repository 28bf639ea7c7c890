"""``python -m quotes``: the quotes service process."""

from __future__ import annotations

import asyncio

from quotes.app import main

if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
