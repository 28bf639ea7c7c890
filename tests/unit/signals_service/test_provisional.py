"""Pure parts of provisional signals, the market clock and the scan's choice of the closed bar."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest

from marketbus.clock import market_now, parse_clock, published_now
from marketbus.contracts import Quote, Signal, signal_id
from marketbus.sessions import shanghai_ms
from marketbus.trend import CLOSE, NF, OPEN, TS, VOLUME
from signals.provisional import (
    as_provisional,
    forming_day_ts,
    forming_window,
    resolve,
    snapshot_row,
)
from signals.scan import closed_only, provisional_targets
from signals.scheduler import Planner, parse_schedule

D = shanghai_ms(2026, 11, 27)  # a Friday, a trading day
D_PREV = shanghai_ms(2026, 11, 26)


def rows(*ts: int) -> np.ndarray:
    out = np.ones((len(ts), NF))
    out[:, TS] = ts
    return out


def sig(side: str = "BUY", strategy: str = "ma_cross", bar_ts: int = D, **kw: object) -> Signal:
    base = dict(
        id=signal_id("510300.SH", strategy, "1d", bar_ts),
        code="510300.SH",
        name="沪深300ETF",
        market="ETF",
        strategy=strategy,
        strategy_name="均线交叉",
        side=side,
        price=4.0,
        period="1d",
        bar_ts=bar_ts,
        confidence=0.7,
        volume_ratio=1.2,
        change_percent=1.0,
        reason="SMA5 crosses SMA20",
        created_ts=D + 1,
    )
    base.update(kw)
    return Signal.model_validate(base)


# --- the market clock ---------------------------------------------------------------------------


def test_a_fresh_published_clock_is_the_market_now() -> None:
    raw = orjson.dumps({"ts": D + 10 * 3_600_000, "wall": 5_000_000})
    assert published_now(raw, wall_now=5_000_000) == D + 10 * 3_600_000
    assert published_now(raw, wall_now=5_002_000) == D + 10 * 3_600_000 + 2_000  # extrapolated
    fast = orjson.dumps({"ts": D, "wall": 5_000_000, "speed": 60})
    assert published_now(fast, wall_now=5_001_000) == D + 60_000


@pytest.mark.parametrize(
    "raw",
    [None, b"", b"{not json", b'{"ts": 1}', b'{"ts": "x", "wall": 1}'],
)
def test_an_absent_or_unreadable_clock_gives_none(raw: bytes | None) -> None:
    assert published_now(raw, wall_now=5_000_000) is None


def test_a_stale_clock_falls_back_to_the_configured_clock() -> None:
    raw = orjson.dumps({"ts": D, "wall": 5_000_000})
    assert published_now(raw, wall_now=5_000_000 + 5_001) is None
    fallback = parse_clock("2026-11-20T09:40:00@5000x60")  # anchor: wall epoch 5000 s
    fallback = type(fallback)(fallback.start_ms, fallback.anchor_ms, fallback.speed, wall=lambda: 5_001_000)
    assert market_now(raw, 5_000_000 + 60_000, fallback) == shanghai_ms(2026, 11, 20, 9, 41)
    assert market_now(raw, 5_000_000 + 1_000, fallback) == D + 1_000


def test_the_scan_answers_for_the_last_bar_closed_at_the_market_time() -> None:
    # the sim replays the 27th (its clock at 10:00) while the wall clock is days later
    series = rows(D_PREV - 86_400_000, D_PREV, D)
    market_now = shanghai_ms(2026, 11, 27, 10, 0)
    assert closed_only(series, "1d", market_now)[:, TS].tolist() == [D_PREV - 86_400_000, D_PREV]
    # a market clock further back leaves out every bar not closed yet then
    yesterday_morning = shanghai_ms(2026, 11, 26, 10, 0)
    assert closed_only(series, "1d", yesterday_morning)[:, TS].tolist() == [D_PREV - 86_400_000]
    assert closed_only(series, "1d", shanghai_ms(2026, 11, 27, 15, 1))[:, TS].tolist()[-1] == D


# --- the forming bar ----------------------------------------------------------------------------


def test_the_forming_day_is_the_session_day_from_the_open_to_the_close() -> None:
    assert forming_day_ts(shanghai_ms(2026, 11, 27, 10, 0)) == D
    assert forming_day_ts(shanghai_ms(2026, 11, 27, 12, 0)) == D  # lunch: still forming
    assert forming_day_ts(shanghai_ms(2026, 11, 27, 9, 20)) is None  # auction, no trade yet
    assert forming_day_ts(shanghai_ms(2026, 11, 27, 15, 0)) is None  # the close: not provisional
    assert forming_day_ts(shanghai_ms(2026, 11, 28, 10, 0)) is None  # Saturday


def quote(ts: int, **kw: object) -> Quote:
    base = dict(code="510300.SH", name="沪深300ETF", market="ETF", price=4.1, change_percent=None,
                volume=1e6, amount=4.1e6, open=4.0, high=4.2, low=3.9, pre_close=4.0, ts=ts)  # fmt: skip
    base.update(kw)
    return Quote.model_validate(base)


def test_the_forming_bar_comes_from_the_day_s_snapshot() -> None:
    at = shanghai_ms(2026, 11, 27, 10, 0)
    row = snapshot_row(quote(at), D)
    assert row is not None and row.tolist() == [D, 4.0, 4.2, 3.9, 4.1, 1e6, 4.1e6]
    assert snapshot_row(quote(shanghai_ms(2026, 11, 26, 15, 0)), D) is None  # yesterday's
    assert snapshot_row(quote(at, volume=0.0), D) is None  # no trade yet
    no_ohl = snapshot_row(quote(at, open=None, high=None, low=None), D)
    assert no_ohl is not None and no_ohl[OPEN] == no_ohl[CLOSE] == 4.1

    closed = rows(*(D_PREV - i * 86_400_000 for i in range(300, -1, -1)))
    window = forming_window(closed, D, row, 250)
    assert window is not None and len(window) == 250
    assert window[-1, TS] == D and window[-1, VOLUME] == 1e6 and window[-2, TS] == D_PREV
    # a forming row stored in the series (quotes stopped mid-day) is replaced by the snapshot...
    stored = np.concatenate([closed, rows(D)])
    replaced = forming_window(stored, D, row, 250)
    assert replaced is not None and replaced[-1, VOLUME] == 1e6 and replaced[-2, TS] == D_PREV
    # ...and used when there is no snapshot; nothing forms without either
    kept = forming_window(stored, D, None, 250)
    assert kept is not None and kept[-1, TS] == D and kept[-1, VOLUME] == 1.0
    assert forming_window(closed, D, None, 250) is None


def test_provisional_targets_skip_codes_without_a_forming_bar() -> None:
    at = shanghai_ms(2026, 11, 27, 10, 0)
    closed = rows(D_PREV)
    targets = provisional_targets(
        ["510300.SH", "159915.SZ"], [closed, closed], {"510300.SH": quote(at)}, "1d", D
    )
    assert [t.code for t in targets] == ["510300.SH"]
    assert targets[0].rows[:, TS].tolist() == [D_PREV, D]


# --- ids and resolution -------------------------------------------------------------------------


def test_a_provisional_signal_has_an_id_of_its_own() -> None:
    closed = sig()
    prov = as_provisional(closed)
    assert prov.provisional and prov.status == "provisional"
    assert prov.id == signal_id("510300.SH", "ma_cross", "1d", D, "provisional") != closed.id
    assert as_provisional(sig()).id == prov.id  # deterministic: one per code, strategy, period, day
    withdrawn = signal_id("510300.SH", "ma_cross", "1d", D, "withdrawn")
    assert len({closed.id, prov.id, withdrawn}) == 3
    # the closed-bar id is the one of schema version 1
    assert closed.id == signal_id("510300.SH", "ma_cross", "1d", D)


def test_version_1_entries_still_parse_as_closed_bar_signals() -> None:
    v1 = json.loads(sig().model_dump_json())
    for field in ("provisional", "status", "confirms", "withdraws"):
        del v1[field]
    v1["schema_version"] = 1
    old = Signal.model_validate_json(json.dumps(v1))
    assert old.schema_version == 1 and not old.provisional and old.status is None
    assert sig().schema_version == 2


def test_the_close_confirms_a_provisional_signal_of_the_same_side() -> None:
    prov = as_provisional(sig(price=4.05))
    closed = sig(price=4.1)
    out = resolve([closed], {("510300.SH", "ma_cross", "1d", D): prov}, {("510300.SH", D): 4.1}, 99)
    assert len(out) == 1
    assert out[0].id == closed.id and out[0].status == "confirmed" and out[0].confirms == prov.id
    assert not out[0].provisional and out[0].price == 4.1


def test_the_close_withdraws_a_provisional_signal_it_does_not_give_again() -> None:
    prov_buy = as_provisional(sig("BUY", "ma_cross"))
    prov_sell = as_provisional(sig("SELL", "macd_cross"))
    closed_buy = sig("BUY", "macd_cross")  # the other side of the provisional macd_cross SELL
    provisional = {
        ("510300.SH", "ma_cross", "1d", D): prov_buy,
        ("510300.SH", "macd_cross", "1d", D): prov_sell,
    }
    out = resolve([closed_buy], provisional, {("510300.SH", D): 3.95}, 1234)
    withdrawals = [s for s in out if s.status == "withdrawn"]
    assert [w.withdraws for w in withdrawals] == [prov_buy.id, prov_sell.id]  # by strategy
    for w, prov in ((withdrawals[0], prov_buy), (withdrawals[1], prov_sell)):
        assert w.id == signal_id("510300.SH", prov.strategy, "1d", D, "withdrawn")
        assert w.side == prov.side and w.provisional and w.price == 3.95 and w.created_ts == 1234
    assert "no signal" in withdrawals[0].reason and "BUY" in withdrawals[1].reason
    plain = [s for s in out if s.status != "withdrawn"]
    assert plain == [closed_buy]  # a closed-bar signal of its own, confirming nothing
    assert out.index(withdrawals[1]) < out.index(closed_buy)  # withdrawals are written first


def test_without_provisional_signals_the_close_writes_what_it_found() -> None:
    closed = [sig("BUY"), sig("SELL", "macd_cross")]
    assert resolve(closed, {}, {}, 1) == closed


# --- the schedule on the market clock -----------------------------------------------------------


def test_the_schedule_follows_an_accelerated_market_clock() -> None:
    from marketbus import sessions

    planner = Planner(parse_schedule("every 20m in session"), sessions)
    t = shanghai_ms(2026, 11, 27, 9, 31)
    fired = []
    for _ in range(60):  # one market minute per step
        slot = planner.step(t)
        if slot is not None:
            fired.append(slot)
        t += 60_000
    assert fired == [shanghai_ms(2026, 11, 27, 9, 40), shanghai_ms(2026, 11, 27, 10, 0),
                     shanghai_ms(2026, 11, 27, 10, 20)]  # fmt: skip


def test_a_market_clock_set_in_the_past_plans_from_there() -> None:
    from marketbus import sessions

    planner = Planner(parse_schedule("every 20m in session"), sessions)
    wall_evening = shanghai_ms(2026, 12, 2, 20, 0)
    assert planner.step(wall_evening) is None  # before the quotes service publishes its clock
    assert planner.planned == shanghai_ms(2026, 12, 3, 9, 40)
    sim_morning = shanghai_ms(2026, 12, 2, 9, 35)
    assert planner.step(sim_morning) is None
    assert planner.planned == shanghai_ms(2026, 12, 2, 9, 40)
    assert planner.step(shanghai_ms(2026, 12, 2, 9, 40)) == shanghai_ms(2026, 12, 2, 9, 40)
    # a jump ahead fires the missed slot once
    assert planner.step(shanghai_ms(2026, 12, 2, 11, 0)) == shanghai_ms(2026, 12, 2, 10, 0)
    assert planner.step(shanghai_ms(2026, 12, 2, 11, 0, 30)) is None
