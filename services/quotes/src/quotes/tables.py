"""Reading tabular files (CSV, Parquet) with the line number of every row, as an editor shows it.

The header is line 1, so the first data row is line 2. Rows the CSV parser cannot split (too many
fields) are reported as bad rows instead of shifting every later line number.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from marketbus.sessions import DAY_MS, MINUTE_MS, UTC_OFFSET_MS

_SKIPPED = re.compile(r"Skipping line (\d+): (.*)")


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def read_table(
    path: str | Path, dtype: dict[str, type] | None = None
) -> tuple[pd.DataFrame, np.ndarray, list[BadRow]]:
    """The rows of a CSV or Parquet file, their line numbers, and the rows that could not be
    split into fields. Blank CSV lines are kept as empty rows (so the caller reports them)."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
        return frame, np.arange(2, len(frame) + 2), []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = pd.read_csv(path, dtype=dtype, skip_blank_lines=False, on_bad_lines="warn")
    unsplittable: list[BadRow] = []
    for warning in caught:
        for match in _SKIPPED.finditer(str(warning.message)):
            unsplittable.append(BadRow(int(match.group(1)), match.group(2).strip()))
    skipped = {row.line for row in unsplittable}
    lines = np.arange(2, len(frame) + 2 + len(skipped))
    if skipped:
        lines = lines[~np.isin(lines, list(skipped))]
    return frame, lines[: len(frame)], unsplittable


def numeric(column: pd.Series) -> np.ndarray:
    """Floats, NaN where a cell is missing or not a number."""
    if pd.api.types.is_float_dtype(column) or pd.api.types.is_integer_dtype(column):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def shanghai_epoch_ms(column: pd.Series, fmt: str | None = None) -> np.ndarray:
    """Epoch ms (float, NaN when unparseable) of wall times or dates in Asia/Shanghai.

    Integers are taken as epoch seconds (below 1e11) or milliseconds; strings as dates
    (YYYYMMDD, YYYY-MM-DD) or date-times (YYYY-MM-DD HH:MM:SS). Each distinct value is parsed
    once (a file of the whole market repeats each date or minute thousands of times).
    """
    index, distinct = pd.factorize(column)
    if not len(distinct):
        return np.full(len(column), np.nan)
    values = _epoch_ms(pd.Series(distinct), fmt)
    return np.where(index < 0, np.nan, values[index])


def _epoch_ms(column: pd.Series, fmt: str | None) -> np.ndarray:
    if fmt is not None and pd.api.types.is_numeric_dtype(column):
        column = column.astype("Int64").astype("string")
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.where(values < 1e11, values * 1000, values)
    text = column.astype("string").str.strip()
    as_number = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    not_date = (text.str.len() != 8).to_numpy(dtype=bool, na_value=False)
    is_epoch = ~np.isnan(as_number) & (as_number > 1e9) & not_date
    parsed = pd.to_datetime(text, format=fmt, errors="coerce") if fmt else _parse_mixed(text)
    ns = parsed.to_numpy(dtype="datetime64[ns]").astype("int64")
    out = np.where(parsed.isna().to_numpy(), np.nan, ns / 1e6 - UTC_OFFSET_MS)
    epoch = np.where(as_number < 1e11, as_number * 1000, as_number)
    return np.where(is_epoch, epoch, out)


def _parse_mixed(text: pd.Series) -> pd.Series:
    out = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        missing = out.isna()
        if not missing.any():
            break
        out = out.where(~missing, pd.to_datetime(text, format=fmt, errors="coerce"))
    return out


# --- Tushare layouts ------------------------------------------------------------------------

TUSHARE_UNITS = {"trade_date": (100.0, 1000.0), "trade_time": (1.0, 1.0)}
"""Shares per ``vol`` unit and yuan per ``amount`` unit of a Tushare file, by its time column:
``daily`` (``trade_date``) counts lots of 100 shares and thousands of yuan, ``stk_mins``
(``trade_time``) shares and yuan."""

_MORNING_OPEN = 570 * MINUTE_MS  # 09:30, ms after local midnight
_MORNING_CLOSE = 690 * MINUTE_MS  # 11:30
_AFTERNOON_OPEN = 780 * MINUTE_MS  # 13:00
_AFTERNOON_CLOSE = 900 * MINUTE_MS  # 15:00


def stk_mins_bar_start(label_ms: np.ndarray, step_ms: int | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bar start of Tushare ``stk_mins`` rows, from their ``trade_time`` (epoch ms).

    The one minute-bar time convention of marketbus for Tushare files (the importer and the
    replay feed both call this): ``trade_time`` is the bar's END, so ``09:31:00`` labels the bar
    09:30-09:31 (its start, 09:30, is the bar time marketbus stores, as in every ``Bar``) and
    ``15:00:00`` the bar 14:59-15:00. Tushare lists the opening call auction (09:25) as a row of
    its own stamped ``09:30:00``; that row, and a ``13:00:00`` row where a source has one, belong to
    the first bar of their session (09:30 or 13:00 for 1m and 5m alike) and are folded into it by
    :func:`fold_open_rows`.

    Returns ``(start, is_open_row)``: ``start`` is NaN where the label is neither the end of a
    session bar of ``step_ms`` nor a session open; ``is_open_row`` marks the 09:30:00 / 13:00:00
    rows.
    """
    label = np.asarray(label_ms, dtype=np.float64)
    step = np.broadcast_to(np.asarray(step_ms, dtype=np.float64), label.shape)
    ok = ~np.isnan(label)
    tod = np.where(ok, (np.nan_to_num(label) + UTC_OFFSET_MS) % DAY_MS, -1.0)
    is_open = ok & ((tod == _MORNING_OPEN) | (tod == _AFTERNOON_OPEN))
    start_tod = tod - step
    morning = (start_tod >= _MORNING_OPEN) & (start_tod <= _MORNING_CLOSE - step)
    afternoon = (start_tod >= _AFTERNOON_OPEN) & (start_tod <= _AFTERNOON_CLOSE - step)
    aligned = np.fmod(start_tod, step) == 0
    bar_end = ok & ~is_open & (morning | afternoon) & aligned
    start = np.where(is_open, label, np.where(bar_end, label - step, np.nan))
    return start, is_open


def fold_open_rows(
    codes: np.ndarray, start: np.ndarray, is_open: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fold each session-open row (see :func:`stk_mins_bar_start`) into the bar of the same code
    and start: the bar opens at the open row's open, its high and low take the open row's in,
    its close stays, volume and amount add up. An open row without such a bar stands as that bar.

    ``values``: one row per input row, columns open, high, low, close, volume, amount. Rows with
    a NaN ``start`` are ignored. Where several bars (or open rows) share a code and start, the
    first of each is folded and the others are left as they are (callers reject duplicates first).
    Returns ``(keep, values)``: the rows that remain bars (an open row that was folded is not
    kept) and the values with the folds applied (a new array).
    """
    out = np.array(values, dtype=np.float64, copy=True)
    valid = ~np.isnan(start)
    keep = valid.copy()
    opens = np.flatnonzero(valid & is_open)
    if not len(opens):
        return keep, out
    frame = pd.DataFrame({"c": np.asarray(codes, dtype=object), "t": start, "i": np.arange(len(start))})
    bars = frame.iloc[np.flatnonzero(valid & ~is_open)].drop_duplicates(["c", "t"], keep="first")
    firsts = frame.iloc[opens].drop_duplicates(["c", "t"], keep="first")
    pairs = firsts.merge(bars, on=["c", "t"], suffixes=("_open", "_bar"))
    src = pairs["i_open"].to_numpy(dtype=np.int64)
    dst = pairs["i_bar"].to_numpy(dtype=np.int64)
    if len(dst):
        out[dst, 0] = values[src, 0]
        out[dst, 1] = np.fmax(values[src, 1], values[dst, 1])
        out[dst, 2] = np.fmin(values[src, 2], values[dst, 2])
        out[dst, 4:6] = values[src, 4:6] + values[dst, 4:6]
        keep[src] = False
    return keep, out
