"""The `codes` list parameter: the OpenAPI document declares exactly what the routes accept (its
pattern and maximum), so a client or a fuzzer that follows the document is never refused."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.queries import codes_max_length, codes_pattern, codes_problem, parse_codes
from gateway.routes.params import MAX_CODES
from marketbus.settings import Settings

CODES = [f"{600000 + i:06d}.SH" for i in range(MAX_CODES + 1)]


def _openapi() -> dict:
    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0", _env_file=None))  # type: ignore[call-arg]
    return app.openapi()


def _codes_schema(path: str) -> dict:
    params = _openapi()["paths"][path]["get"]["parameters"]
    schema = next(p for p in params if p["name"] == "codes")["schema"]
    return next(s for s in schema["anyOf"] if s.get("type") == "string")


@pytest.mark.parametrize("path", ["/api/stocks/quotes", "/api/stream/quotes"])
def test_the_document_declares_the_format_and_the_maximum(path: str) -> None:
    schema = _codes_schema(path)
    assert schema["pattern"] == codes_pattern(MAX_CODES)
    assert schema["maxLength"] == codes_max_length(MAX_CODES)


def test_no_declared_pattern_says_digit_with_backslash_d() -> None:
    """`\\d` is any Unicode digit to the server's regex engine, 0-9 to a JSON Schema reader."""
    patterns = []
    for ops in _openapi()["paths"].values():
        for op in ops.values():
            for param in op.get("parameters", []):
                schema = param["schema"]
                patterns += [s["pattern"] for s in [schema, *schema.get("anyOf", [])] if "pattern" in s]
    assert len(patterns) >= 5 and not [p for p in patterns if "\\d" in p]


PATTERN = re.compile(codes_pattern(MAX_CODES))


@pytest.mark.parametrize(
    "text",
    ["", "510300.SH", "510300.sh,159915.Sz", "510300.SH,510300.SH", ",".join(CODES[:MAX_CODES])],
)
def test_the_pattern_takes(text: str) -> None:
    assert PATTERN.fullmatch(text) and len(text) <= codes_max_length(MAX_CODES)


@pytest.mark.parametrize(
    "text",
    [
        ",".join(CODES),  # one code too many
        "0",
        "510300",
        "510300.SH,",
        ",510300.SH",
        "510300.SH,,159915.SZ",
        "510300.SH ,159915.SZ",
        "510300.SH, 159915.SZ",
        "510300.SH\n",
        "٥١٠٣٠٠.SH",  # digits, but not ASCII ones
    ],
)
def test_the_pattern_refuses_and_says_why(text: str) -> None:
    assert not PATTERN.fullmatch(text)
    assert codes_problem(text, MAX_CODES)


def test_the_longest_declared_list_is_the_maximum_number_of_codes() -> None:
    longest = ",".join(CODES[:MAX_CODES])
    assert len(longest) == codes_max_length(MAX_CODES)
    assert parse_codes(longest, MAX_CODES) == CODES[:MAX_CODES]


def test_a_value_just_over_the_maximum_still_reaches_the_app() -> None:
    """A client probing the declared maximum (one character over it, each character 4 bytes of
    UTF-8, percent-encoded) stays within the 64 KiB request line uvicorn's parser takes, so the
    gateway answers the 422 it declares, not the server a bare 400."""
    worst = "/api/stocks/quotes?codes=" + "%F0%9B%A0%87" * (codes_max_length(MAX_CODES) + 1)
    assert len(worst) < 64 * 1024


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_every_list_the_pattern_takes_parses(data: st.DataObject) -> None:
    max_codes = data.draw(st.integers(1, 6))
    text = data.draw(st.from_regex(codes_pattern(max_codes), fullmatch=True))
    assert len(text) <= codes_max_length(max_codes)
    codes = parse_codes(text, max_codes)  # never raises
    assert len(codes) == len(set(codes)) <= max_codes
    assert all(re.fullmatch(r"\d{6}\.(SH|SZ|BJ)", c) for c in codes)


def test_the_problem_names_the_bad_code_or_the_count() -> None:
    assert "'nope'" in codes_problem("600519.SH,nope", MAX_CODES)
    assert f"at most {MAX_CODES} codes" in codes_problem(",".join(CODES), MAX_CODES)
    assert "separated by commas" in codes_problem("510300.SH,,159915.SZ", MAX_CODES)
