import numpy as np

from marketbus.sessions import is_in_session, local_day_start_ms
from marketbus.sessions import shanghai_ms as sh
from marketbus.trend import CLOSE, HIGH, LOW, OPEN, TS, VOLUME
from quotes.feeds.sim import SimMarket
from quotes.history import DAILY_BARS, MINUTE_BARS, minutes_before, synth_history
from quotes.universe import load_universe

UNIVERSE = load_universe()[::9]


def test_minutes_before_skip_lunch_nights_and_weekends() -> None:
    minutes = minutes_before(sh(2024, 5, 13, 9, 30), 250)  # a Monday morning
    assert len(minutes) == 250 and minutes == sorted(minutes)
    assert minutes[-1] == sh(2024, 5, 10, 14, 59) and all(is_in_session(m) for m in minutes)
    assert minutes[0] == sh(2024, 5, 9, 14, 50)


def test_history_is_reproducible_and_consistent_with_the_sim_start() -> None:
    start = sh(2024, 5, 10, 13)  # afternoon: the morning becomes part of the sim's day
    a = synth_history(UNIVERSE, 7, start)
    b = synth_history(UNIVERSE, 7, start)
    for item in UNIVERSE:
        code = item.code
        assert np.array_equal(a.daily[code], b.daily[code])
        assert np.array_equal(a.minute[code], b.minute[code])
        daily, minute, state = a.daily[code], a.minute[code], a.states[code]
        assert len(daily) == DAILY_BARS and len(minute) == MINUTE_BARS
        assert minute[-1, TS] == sh(2024, 5, 10, 11, 29)
        assert daily[-1, TS] == sh(2024, 5, 9) and (np.diff(daily[:, TS]) > 0).all()
        assert minute[-1, CLOSE] == item.ref_price == state.price
        yesterday = minute[minute[:, TS] < sh(2024, 5, 10)]
        assert daily[-1, CLOSE] == yesterday[-1, CLOSE] == state.pre_close
        for rows in (daily, minute):
            assert (rows[:, LOW] <= np.minimum(rows[:, OPEN], rows[:, CLOSE]) + 1e-9).all()
            assert (rows[:, HIGH] >= np.maximum(rows[:, OPEN], rows[:, CLOSE]) - 1e-9).all()
            steps = rows[:, OPEN:VOLUME] / item.tick_size
            assert np.allclose(steps, np.round(steps), atol=1e-6)
            assert (rows[:, VOLUME] % 100 == 0).all() and (rows[:, VOLUME] > 0).all()
        today = minute[minute[:, TS] >= sh(2024, 5, 10)]
        assert state.day_ms == local_day_start_ms(start)
        assert state.volume == today[:, VOLUME].sum() and state.open == today[0, OPEN]
    c = synth_history(UNIVERSE, 8, start)
    assert not np.array_equal(a.daily[UNIVERSE[0].code], c.daily[UNIVERSE[0].code])


def test_sim_continues_from_the_seeded_state() -> None:
    start = sh(2024, 5, 10, 13)
    history = synth_history(UNIVERSE, 7, start)
    market = SimMarket(UNIVERSE, 7, start, history.states)
    first = {}
    for tick in market.step_until(sh(2024, 5, 10, 13, 1)):
        first.setdefault(tick.code, tick)
    for item in UNIVERSE:
        tick, state = first[item.code], history.states[item.code]
        assert tick.pre_close == state.pre_close and tick.open == state.open
        assert tick.volume > state.volume
        assert abs(tick.price / item.ref_price - 1) < 0.01
