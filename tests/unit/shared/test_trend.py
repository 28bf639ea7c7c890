import numpy as np

from marketbus.trend import NF, TS, merge, pack, time_major, unpack


def rows(ts: list[int], close: float = 1.0) -> np.ndarray:
    out = np.zeros((len(ts), NF))
    out[:, TS] = ts
    out[:, 4] = close
    return out


def test_pack_roundtrip_drops_partial_record() -> None:
    r = rows([1, 2, 3])
    raw = pack(r)
    assert np.array_equal(unpack(raw), r)
    assert np.array_equal(unpack(raw + b"\x00" * 5), r)
    assert unpack(b"").shape == (0, NF)


def test_merge_is_idempotent_and_new_rows_win() -> None:
    old = rows([1, 2, 3], close=1.0)
    new = rows([3, 4], close=2.0)
    merged = merge(old, new, max_bars=10)
    assert merged[:, TS].tolist() == [1, 2, 3, 4]
    assert merged[:, 4].tolist() == [1.0, 1.0, 2.0, 2.0]
    assert np.array_equal(merge(merged, new, max_bars=10), merged)
    assert merge(merged, new, max_bars=2)[:, TS].tolist() == [3, 4]


def test_time_major_pads_short_codes_at_the_front() -> None:
    tm = time_major([rows([1, 2, 3]), rows([5])], length=3)
    assert tm.shape == (NF, 3, 2)
    assert tm[TS, :, 0].tolist() == [1, 2, 3]
    assert np.isnan(tm[TS, :2, 1]).all() and tm[TS, 2, 1] == 5
