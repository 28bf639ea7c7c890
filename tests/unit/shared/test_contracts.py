import json
from pathlib import Path

import pytest

from marketbus.contracts import Bar, Signal, Tick, json_schemas, signal_id
from marketbus.wire import BadMessage, decode, encode

SCHEMAS = Path(__file__).resolve().parents[3] / "shared" / "schemas"


def test_published_schemas_match_the_models() -> None:
    for name, schema in json_schemas().items():
        published = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
        assert published == schema, f"regenerate shared/schemas/{name}.schema.json"


def test_wire_roundtrip_is_plain_json() -> None:
    tick = Tick(code="510300.SH", ts=1_700_000_000_000, price=3.912, volume=1e6, amount=3.9e6)
    fields = encode(tick)
    assert set(fields) == {"data"}
    assert json.loads(fields["data"])["code"] == "510300.SH"
    assert decode(Tick, {b"data": fields["data"]}) == tick


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({b"data": b"not json"}, "Invalid JSON"),
        ({b"other": b"{}"}, "no 'data' field"),
        ({b"data": b'{"code": "510300", "ts": 1, "price": 1, "volume": 0, "amount": 0}'}, "code"),
        ({b"data": b'{"code": "510300.SH", "ts": 1, "price": "NaN", "volume": 0, "amount": 0}'}, "price"),
    ],
)
def test_bad_entries_give_a_precise_reason(fields: dict, reason: str) -> None:
    with pytest.raises(BadMessage, match=reason):
        decode(Tick, fields)


def test_signal_ids_are_deterministic() -> None:
    a = signal_id("510300.SH", "ma_cross", "1m", 1)
    assert a == signal_id("510300.SH", "ma_cross", "1m", 1)
    assert a != signal_id("510300.SH", "ma_cross", "1m", 2)
    assert a != signal_id("510300.SH", "macd_cross", "1m", 1)


def test_models_are_frozen_and_strict() -> None:
    bar = Bar(code="510300.SH", period="1m", ts=0, open=1, high=1, low=1, close=1, volume=0, amount=0)
    with pytest.raises(Exception):  # noqa: B017
        bar.close = 2  # type: ignore[misc]
    with pytest.raises(Exception):  # noqa: B017
        Signal.model_validate({"id": "x"})
