"""Hypothesis against every message parser: no input raises anything but the documented error.

- ``marketbus.wire.decode`` (Tick, Bar, Signal, Command, JobStatus): ``BadMessage`` only;
- the poll providers' ``parse(body, codes)`` (eastmoney, sina, tencent): ``ValueError`` only;
- the replay file reader and the history importer (CSV): ``ValueError`` only (bad rows are
  reported, not raised).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketbus.contracts import WIRE_MODELS, Bar, Command, JobStatus, Signal, Tick
from marketbus.wire import BadMessage, decode, encode
from quotes.feeds.eastmoney import EastMoney
from quotes.feeds.replay import load_replay
from quotes.feeds.sina import Sina
from quotes.feeds.tencent import Tencent
from quotes.importer import parse_bars

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)

SAMPLES: dict[str, dict[str, Any]] = {
    "Tick": json.loads(encode(Tick(code="510300.SH", ts=1, price=1.0, volume=1.0, amount=1.0))["data"]),
    "Bar": json.loads(
        encode(Bar(code="510300.SH", period="1m", ts=1, open=1, high=1, low=1, close=1, volume=1, amount=1))[
            "data"
        ]
    ),
    "Command": json.loads(encode(Command(id="x", type="calc_signals", issued_ts=1))["data"]),
    "JobStatus": json.loads(
        encode(JobStatus(job_id="x", task_type="calc_signals", state="done", created_ts=1))["data"]
    ),
}
SAMPLES["Signal"] = {
    "id": "x", "code": "510300.SH", "name": "n", "market": "ETF", "strategy": "ma_cross",
    "strategy_name": "MA", "side": "BUY", "price": 1.0, "period": "1d", "bar_ts": 1,
    "confidence": 0.5, "volume_ratio": None, "change_percent": None, "reason": "r", "created_ts": 1,
}  # fmt: skip
Signal.model_validate(SAMPLES["Signal"])


@st.composite
def mutated(draw: st.DrawFn, name: str) -> bytes:
    """A valid message of the model with some fields replaced, dropped or added."""
    doc = dict(SAMPLES[name])
    for key in draw(st.lists(st.sampled_from(sorted(doc)), max_size=3)):
        if draw(st.booleans()):
            doc[key] = draw(json_values)
        else:
            doc.pop(key, None)
    if draw(st.booleans()):
        doc[draw(st.text(max_size=8))] = draw(json_values)
    return json.dumps(doc, allow_nan=True).encode()


raw_bodies = st.binary(max_size=200) | st.text(max_size=200).map(str.encode)


@pytest.mark.parametrize("name", sorted(WIRE_MODELS))
@FUZZ
@given(data=st.data())
def test_wire_decode_raises_only_bad_message(name: str, data: st.DataObject) -> None:
    body = data.draw(mutated(name) | raw_bodies | json_values.map(lambda v: json.dumps(v).encode()))
    key = data.draw(st.sampled_from([b"data", "data", b"other"]))
    fields: dict[Any, Any] = {key: body}
    try:
        msg = decode(WIRE_MODELS[name], fields)
    except BadMessage:
        return
    assert isinstance(msg, WIRE_MODELS[name])


PROVIDERS = {"eastmoney": EastMoney(), "sina": Sina(), "tencent": Tencent()}
CODES = ["510300.SH", "159915.SZ", "600519.SH", "430047.BJ"]


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@FUZZ
@given(
    body=raw_bodies | json_values.map(lambda v: json.dumps(v).encode()),
    codes=st.lists(st.sampled_from(CODES), max_size=4),
)
def test_provider_parsers_raise_only_value_error(provider: str, body: bytes, codes: list[str]) -> None:
    try:
        ticks = PROVIDERS[provider].parse(body, codes)
    except ValueError:
        return
    assert all(isinstance(t, Tick) for t in ticks)


cells = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12),
    st.sampled_from(["510300.SH", "20251125", "2025-11-25 09:31:00", "1764034260000", "nan", "-1", "1e308"]),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)


@st.composite
def csv_files(draw: st.DrawFn, header: list[str]) -> str:
    cols = draw(st.lists(st.sampled_from(header), min_size=1, max_size=len(header) + 1))
    rows = draw(st.lists(st.lists(cells, min_size=0, max_size=len(cols) + 1), max_size=6))
    lines = [",".join(cols)] + [",".join(r) for r in rows]
    return "\n".join(lines)


def _write(text: str) -> Path:
    handle = tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, encoding="utf-8")  # noqa: SIM115
    with handle:
        handle.write(text)
    return Path(handle.name)


@FUZZ
@given(text=csv_files(["code", "ts", "price", "volume", "amount", "open", "high", "low", "close", "period"]))
def test_replay_reader_raises_only_value_error(text: str) -> None:
    path = _write(text)
    try:
        ticks, _bad = load_replay(path)
    except ValueError:
        return
    finally:
        path.unlink()
    assert all(isinstance(t, Tick) for t in ticks)


@FUZZ
@given(
    text=csv_files(["ts_code", "trade_date", "open", "high", "low", "close", "pre_close", "vol", "amount"])
)
def test_history_importer_raises_only_value_error(text: str) -> None:
    path = _write(text)
    try:
        parse_bars(path)
    except ValueError:
        return
    finally:
        path.unlink()
