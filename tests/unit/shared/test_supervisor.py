"""The restart policy of `marketbus up`, on a fake clock: backoff, reset after a healthy run, crash loop."""

from __future__ import annotations

import pytest

from marketbus.supervisor import ExitHistory, GiveUp, Restart, RestartPolicy, describe_exit


def test_backoff_doubles_from_half_a_second_to_ten() -> None:
    p = RestartPolicy()
    assert [p.backoff(n) for n in range(1, 9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert p.backoff(10_000) == 10.0  # no overflow for a service that crashed all week


def test_quick_exits_back_off_and_the_fifth_within_a_minute_is_a_crash_loop() -> None:
    h = ExitHistory(RestartPolicy())
    now = 0.0
    decisions = []
    for _ in range(5):
        started = now
        now += 1.0  # ran one second, then crashed
        d = h.record_exit(started_at=started, exited_at=now)
        decisions.append(d)
        if isinstance(d, Restart):
            now += d.delay_s
    assert decisions[:4] == [Restart(0.5, 1), Restart(1.0, 2), Restart(2.0, 3), Restart(4.0, 4)]
    assert isinstance(decisions[4], GiveUp)
    assert decisions[4].reason == "5 exits within 60 s"


def test_exits_spread_over_more_than_a_minute_are_not_a_crash_loop() -> None:
    h = ExitHistory(RestartPolicy())
    now = 0.0
    for _ in range(20):  # crashes every 20 s: never 5 in one minute
        started = now
        now += 20.0
        d = h.record_exit(started_at=started, exited_at=now)
        assert isinstance(d, Restart), d
        now += d.delay_s
    assert d.delay_s == 10.0  # no healthy minute in between: the backoff stays at its cap


def test_a_minute_of_healthy_running_resets_the_backoff() -> None:
    h = ExitHistory(RestartPolicy())
    assert h.record_exit(started_at=0.0, exited_at=1.0) == Restart(0.5, 1)
    assert h.record_exit(started_at=1.5, exited_at=2.5) == Restart(1.0, 2)
    assert h.record_exit(started_at=3.5, exited_at=3.5 + 59.9) == Restart(2.0, 3)  # not quite healthy
    assert h.record_exit(started_at=70.0, exited_at=130.0) == Restart(0.5, 1)  # ran 60 s


def test_the_crash_loop_rule_counts_one_window_and_the_policy_is_configurable() -> None:
    p = RestartPolicy(initial_backoff_s=0.01, max_backoff_s=0.02, crash_loop_exits=3, crash_loop_window_s=10)
    h = ExitHistory(p)
    assert h.record_exit(started_at=0, exited_at=0) == Restart(0.01, 1)
    assert h.record_exit(started_at=5, exited_at=5) == Restart(0.02, 2)
    assert h.record_exit(started_at=10, exited_at=10) == Restart(0.02, 3)  # the exit at 0 left the window
    assert h.record_exit(started_at=11, exited_at=11) == GiveUp("3 exits within 10 s")


def test_describe_exit_names_the_signal() -> None:
    assert describe_exit(-9) == "signal SIGKILL (code -9)"
    assert describe_exit(-15) == "signal SIGTERM (code -15)"
    assert describe_exit(3) == "code 3"
    assert describe_exit(0) == "code 0"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_backoff_s": 0}, "initial_backoff_s must be > 0"),
        ({"max_backoff_s": 0.1}, "max_backoff_s (0.1) is below initial_backoff_s (0.5)"),
        ({"crash_loop_exits": 0}, "crash_loop_exits must be >= 1"),
        ({"crash_loop_window_s": -1}, "crash_loop_window_s must be > 0"),
    ],
)
def test_a_bad_policy_is_refused_with_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RestartPolicy(**kwargs)


def test_an_exit_before_its_start_is_refused() -> None:
    with pytest.raises(ValueError, match="before the start"):
        ExitHistory().record_exit(started_at=5.0, exited_at=4.0)
