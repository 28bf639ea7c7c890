import numpy as np

from marketbus.sessions import shanghai_ms
from marketbus.trend import NF, TS
from signals.evaluate import window_ending_at
from signals.scan import UNCLOSED_SLACK, closed_only, closed_targets
from signals.strategies import WINDOW_BARS


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


def test_the_scan_window_of_the_last_closed_bar_is_the_streaming_window() -> None:
    # 300 one-minute bars stored, the newest still being built: the scan answers for the bar before
    # it, on the same 250 rows the streaming path read when that bar closed (strategies that replay
    # from the first row of the window depend on where it starts)
    start = shanghai_ms(2026, 11, 27, 9, 30)
    series = rows(*(start + i * 60_000 for i in range(300)))
    forming = int(series[-1, TS])
    targets = closed_targets(
        ["600519.SH"], [series[-(WINDOW_BARS + UNCLOSED_SLACK) :]], "1m", forming + 30_000
    )
    streaming = window_ending_at(series, forming - 60_000)
    assert streaming is not None and len(streaming) == WINDOW_BARS
    assert np.array_equal(targets[0].rows, streaming)
