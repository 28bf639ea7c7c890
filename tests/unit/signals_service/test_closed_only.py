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


def test_codes_sharing_a_bar_time_get_each_its_own_closed_window() -> None:
    # whether a bar time has closed is decided once per scan: every code still gets exactly
    # the window closed_only gives it (empty series and series ending in a forming bar included)
    day, prev = shanghai_ms(2026, 11, 27), shanghai_ms(2026, 11, 26)
    series = [rows(prev, day), rows(prev), rows(), rows(day), rows(prev, day), rows(prev)]
    codes = [f"60000{i}.SH" for i in range(len(series))]
    for now in (shanghai_ms(2026, 11, 27, 10, 0), shanghai_ms(2026, 11, 27, 15, 1)):
        got = closed_targets(codes, series, "1d", now)
        expected = [(c, closed_only(r, "1d", now)) for c, r in zip(codes, series, strict=True)]
        expected = [(c, r) for c, r in expected if len(r)]
        assert [t.code for t in got] == [c for c, _ in expected]
        for target, (_, window) in zip(got, expected, strict=True):
            assert np.array_equal(target.rows, window)
