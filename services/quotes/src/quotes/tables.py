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

from marketbus.sessions import UTC_OFFSET_MS

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
    (YYYYMMDD, YYYY-MM-DD) or date-times (YYYY-MM-DD HH:MM:SS).
    """
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
