"""The indicators' array pool: reuse inside ``recycle``, nothing kept after ``release``."""

from __future__ import annotations

from signals.indicators import empty, recycle, release


def test_the_next_call_reuses_the_arrays_of_the_last() -> None:
    with recycle():
        first = empty(250, 40)
    with recycle():
        again = empty(250, 40)
        other = empty(250, 41)
    assert again is first and other is not first


def test_released_arrays_are_not_handed_out_again() -> None:
    with recycle():
        first = empty(250, 40)
    release()
    with recycle():
        after = empty(250, 40)
    assert after is not first
