"""``marketbus import-universe FILE``: the universe from a Tushare ``stock_basic`` or ``fund_basic`` file.

- ``stock_basic`` (ts_code, symbol, name, ..., market, exchange, list_status, list_date,
  delist_date): rows with ``list_status`` L (listed) or P (suspended, still listed) join the
  universe or update their name and board; rows with ``list_status`` D (or a ``delist_date``)
  leave it. A file without ``list_status`` lists listed stocks only (Tushare's default query).
- ``fund_basic`` (ts_code, name, ..., market, status, list_date, delist_date): exchange-traded
  funds (``market`` E, or no market column) with ``status`` L join; ``status`` D or a
  ``delist_date`` leave; over-the-counter funds (``market`` O) are not quoted on an exchange and
  are skipped.

The board of every row comes from its code (:func:`quotes.boards.market_of`), so one rule
decides it whatever the source. Codes the file does not mention are left as they are: an import
never empties the universe because the file was partial. Every bad row is reported with its line
number (header = line 1) and the rest is imported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from marketbus.contracts import CODE_RE, Security
from quotes.boards import market_of
from quotes.tables import BadRow, read_table

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from marketbus.keys import Keys


@dataclass
class ParsedUniverse:
    kind: str  # "stock_basic" | "fund_basic"
    listed: list[Security] = field(default_factory=list)
    delisted: list[str] = field(default_factory=list)
    skipped: int = 0  # rows that are valid but not exchange-listed (OTC funds)
    rejected: list[BadRow] = field(default_factory=list)
    rows: int = 0


def _cell(value: object) -> str:
    """A table cell as stripped text; '' when it is missing (None, NaN, NA)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return str(value).strip()


def _date(value: object) -> str:
    """YYYYMMDD from 20240510, '20240510', '2024-05-10' or 20240510.0; '' when missing."""
    text = _cell(value)
    if text.endswith(".0"):
        text = text[:-2]
    text = text.replace("-", "")
    return text if len(text) == 8 and text.isdigit() else ""


def kind_of(columns: list[str]) -> str:
    cols = {c.strip().lower() for c in columns}
    if "ts_code" not in cols or "name" not in cols:
        raise ValueError(
            "not a Tushare stock_basic or fund_basic file: it needs the columns ts_code and name "
            f"(found: {', '.join(columns)})"
        )
    if cols & {"fund_type", "management", "invest_type", "custodian"}:
        return "fund_basic"
    return "stock_basic"


def parse_universe(frame: pd.DataFrame, lines: list[int] | None = None) -> ParsedUniverse:
    """The securities listed and the codes delisted in a stock_basic or fund_basic frame."""
    frame = frame.rename(columns={c: c.strip().lower() for c in frame.columns})
    kind = kind_of(list(frame.columns))
    out = ParsedUniverse(kind=kind, rows=len(frame))
    status_col = "list_status" if kind == "stock_basic" else "status"
    numbers = lines if lines is not None else list(range(2, len(frame) + 2))
    for line, row in zip(numbers, frame.to_dict("records"), strict=True):
        code = _cell(row.get("ts_code")).upper()
        if kind == "fund_basic":
            venue = _cell(row.get("market")).upper()
            if (venue and venue != "E") or code.endswith(".OF"):
                out.skipped += 1  # an over-the-counter fund: no exchange quote
                continue
        if not CODE_RE.match(code):
            out.rejected.append(BadRow(int(line), f"ts_code {code or '(empty)'!r} is not like 600519.SH"))
            continue
        status = _cell(row.get(status_col)).upper() or "L"
        if status not in ("L", "P", "D", "I"):
            out.rejected.append(BadRow(int(line), f"{status_col} {status!r} is not L, P, D or I"))
            continue
        if status == "D" or _date(row.get("delist_date")):
            out.delisted.append(code)
            continue
        if status == "I":  # fund_basic: issued, not yet listed
            out.skipped += 1
            continue
        name = _cell(row.get("name"))
        if not name:
            out.rejected.append(BadRow(int(line), f"{code}: the name is empty"))
            continue
        list_date = _date(row.get("list_date")) or None
        out.listed.append(Security(code=code, name=name, market=market_of(code, name), list_date=list_date))
    return out


def read_universe_file(path: str | Path) -> ParsedUniverse:
    frame, lines, unsplittable = read_table(path, dtype={"list_date": str, "delist_date": str})
    parsed = parse_universe(frame, [int(n) for n in lines])
    parsed.rejected = sorted([*unsplittable, *parsed.rejected], key=lambda bad: bad.line)
    return parsed


async def store_universe(client: Redis, keys: Keys, parsed: ParsedUniverse) -> tuple[int, int]:
    """Add or update the listed securities and remove the delisted codes, in one transaction.
    Returns (written, removed)."""
    pipe = client.pipeline(transaction=True)
    if parsed.listed:
        pipe.hset(
            keys.universe, mapping={s.code: s.model_dump_json(exclude_none=True) for s in parsed.listed}
        )
    if parsed.delisted:
        pipe.hdel(keys.universe, *parsed.delisted)
    results = await pipe.execute()
    removed = int(results[-1]) if parsed.delisted else 0
    return len(parsed.listed), removed


def render(path: str, parsed: ParsedUniverse, written: int, removed: int, max_rejects: int = 50) -> str:
    lines = [
        f"{path} ({parsed.kind}): {parsed.rows} rows, {written} securities listed or updated, "
        f"{removed} delisted codes removed ({len(parsed.delisted)} delisted in the file), "
        f"{parsed.skipped} not exchange-listed, {len(parsed.rejected)} rejected"
    ]
    lines += [f"  rejected {row}" for row in parsed.rejected[:max_rejects]]
    if len(parsed.rejected) > max_rejects:
        lines.append(f"  ... and {len(parsed.rejected) - max_rejects} more rejected rows")
    return "\n".join(lines)


async def _run(path: str) -> tuple[ParsedUniverse, int, int]:
    from marketbus.keys import Keys
    from marketbus.redis import connect
    from marketbus.settings import load_settings

    settings = load_settings()
    if not settings.redis_url:
        raise ValueError("MARKETBUS_REDIS_URL is not set: point it at the server `marketbus up` printed")
    parsed = read_universe_file(path)
    client = connect(settings.redis_url)
    try:
        written, removed = await store_universe(client, Keys(settings.key_prefix), parsed)
    finally:
        await client.aclose()
    return parsed, written, removed


def main(argv: list[str] | None = None) -> int:
    """``python -m quotes.universe_import FILE`` (what ``marketbus import-universe`` runs)."""
    import argparse
    import asyncio
    import sys

    from redis.exceptions import RedisError

    parser = argparse.ArgumentParser(prog="marketbus import-universe")
    parser.add_argument("file", help="a Tushare stock_basic or fund_basic CSV (or Parquet) file")
    args = parser.parse_args(argv)
    try:
        parsed, written, removed = asyncio.run(_run(args.file))
    except (FileNotFoundError, ValueError) as exc:
        print(f"marketbus import-universe: {exc}", file=sys.stderr)
        return 2
    except RedisError as exc:
        print(f"marketbus import-universe: cannot reach the server: {exc}", file=sys.stderr)
        return 2
    print(render(args.file, parsed, written, removed))
    return 0 if written or removed else 1


if __name__ == "__main__":
    raise SystemExit(main())
