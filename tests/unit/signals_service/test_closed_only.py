import numpy as np

from marketbus.sessions import shanghai_ms
from marketbus.trend import NF, TS
from signals.scan import closed_only


def rows(*ts: int) -> np.ndarray:
    out = np.zeros((len(ts), NF))
    out[:, TS] = ts
    return out


def test_the_scan_leaves_out_a_bar_still_being_built() -> None:
    day = shanghai_ms(2026, 11, 27)
    prev = shanghai_ms(2026, 11, 26)
    series = rows(prev, day)
    at_ten = shanghai_ms(2026, 11, 27, 10, 0)
    after_close = shanghai_ms(2026, 11, 27, 15, 1)
    assert closed_only(series, "1d", at_ten)[:, TS].tolist() == [prev]
    assert closed_only(series, "1d", after_close)[:, TS].tolist() == [prev, day]
    minute = shanghai_ms(2026, 11, 27, 10, 0)
    assert len(closed_only(rows(minute), "1m", minute + 30_000)) == 0
    assert len(closed_only(rows(minute), "1m", minute + 60_000)) == 1
    assert len(closed_only(rows(), "1d", at_ten)) == 0
