"""The query contract (marketbus.contracts.Query, marketbus.queries): the wire form, the kinds, the
deadline, the reply key, the replies; and its place in the stream catalogue and the AsyncAPI
document."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from marketbus import asyncapi, streams, wire
from marketbus.contracts import EvaluateArgs, EvaluateItem, IndexAnalysisArgs, Query
from marketbus.keys import QUERIES_GROUP, Keys
from marketbus.queries import (
    EvaluateResult,
    Outcome,
    QueryFailed,
    QueryReply,
    expired,
    new_query,
    own_reply_key,
    parse_reply,
)

KEYS = Keys("tq")


def test_a_query_is_one_data_field_of_plain_json_and_comes_back_the_same() -> None:
    q = new_query(KEYS, EvaluateArgs(items=[EvaluateItem(code="600519.SH", strategy="ma_cross")]), 2.5)
    fields = wire.encode(q)
    assert list(fields) == ["data"]
    raw = orjson.loads(fields["data"])
    assert raw["arguments"] == {
        "kind": "evaluate",
        "period": "1d",
        "items": [{"code": "600519.SH", "strategy": "ma_cross"}],
    }
    assert raw["reply_key"] == "{tq}:query:" + q.id + ":reply" == KEYS.query_reply(q.id)
    back = wire.decode(Query, {b"data": fields["data"]})
    assert back == q and back.kind == "evaluate"


def test_the_deadline_is_the_timeout_after_issuing_and_then_it_expires() -> None:
    q = new_query(KEYS, IndexAnalysisArgs(code="000001.SH", days=120), 2.5)
    assert q.kind == "index_analysis"
    assert q.deadline_ts - q.issued_ts == 2500
    assert not expired(q, q.deadline_ts)
    assert expired(q, q.deadline_ts + 1)


def test_the_kind_decides_the_arguments_and_a_bad_one_names_its_field() -> None:
    q = new_query(KEYS, IndexAnalysisArgs(code="399006.SZ"), 1.0)
    data = orjson.loads(wire.encode(q)["data"])
    assert data["arguments"] == {"kind": "index_analysis", "code": "399006.SZ", "days": 180}
    data["arguments"]["kind"] = "guess"
    with pytest.raises(wire.BadMessage, match="arguments"):
        wire.decode(Query, {"data": orjson.dumps(data)})
    data["arguments"] = {"kind": "index_analysis", "code": "399006.SZ", "days": 5}
    with pytest.raises(wire.BadMessage, match=r"arguments\.index_analysis\.days"):
        wire.decode(Query, {"data": orjson.dumps(data)})
    with pytest.raises(ValidationError, match=r"is not like 510300\.SH"):
        EvaluateItem(code="600519", strategy="ma_cross")
    with pytest.raises(ValidationError, match="items"):
        EvaluateArgs(items=[])


def test_a_worker_answers_only_on_the_reply_key_of_its_own_deployment() -> None:
    q = new_query(KEYS, IndexAnalysisArgs(code="000001.SH"), 1.0)
    assert own_reply_key(KEYS, q)
    assert not own_reply_key(Keys("other"), q)
    foreign = q.model_copy(update={"reply_key": "tq:universe"})
    assert not own_reply_key(KEYS, foreign)


def test_a_reply_carries_its_kind_of_result_and_an_unreadable_one_is_a_failure() -> None:
    result = EvaluateResult(
        items=[
            Outcome(
                code="600519.SH", strategy="ma_cross", side="BUY", reason="x", confidence=0.7, price=10.0
            ),
            Outcome(code="600000.SH", strategy="nope", error="unknown strategy 'nope'"),
        ]
    )
    reply = QueryReply(query_id="q1", result=result, worker="w", answered_ts=1)
    back = parse_reply(reply.model_dump_json())
    assert back == reply and isinstance(back.result, EvaluateResult)
    assert back.result.items[1].side is None and back.result.items[1].error
    rejected = QueryReply(query_id="q2", status="rejected", error="too few bars", answered_ts=2)
    assert parse_reply(rejected.model_dump_json()).error == "too few bars"
    with pytest.raises(QueryFailed, match="status"):
        parse_reply(b'{"query_id": "q3", "status": "maybe", "answered_ts": 3}')
    with pytest.raises(QueryFailed, match="unreadable answer"):
        parse_reply(b"not json")


def test_the_queries_stream_is_in_the_catalogue_with_its_own_group() -> None:
    assert streams.QUERIES in streams.STREAMS
    assert streams.QUERIES.key(KEYS) == "{tq}:queries" and streams.QUERIES.model is Query
    assert streams.QUERY_ANSWERS in streams.GROUPS
    assert streams.QUERY_ANSWERS.name == QUERIES_GROUP
    assert QUERIES_GROUP not in {g.name for g in streams.GROUPS if g is not streams.QUERY_ANSWERS}
    doc = asyncapi.document("tq")
    addresses = {c["address"] for c in doc["channels"].values()}
    assert "{tq}:queries" in addresses
    assert {"arguments", "reply_key", "deadline_ts"} <= set(
        doc["components"]["schemas"]["Query"]["properties"]
    )
