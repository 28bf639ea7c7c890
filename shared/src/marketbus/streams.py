"""Every stream of the bus in one catalogue: its key, the message it carries, its bound, who
consumes it; and the named publisher that writes it.

On the wire an entry is one field ``data`` holding the model's JSON (:mod:`marketbus.wire`),
readable with bare ``XRANGE`` from any language. FastStream's producer writes its own envelope
under ``__data__`` and has no batch publish to a stream, so :class:`Publisher` writes with XADD,
alone or queued on a pipeline (one round trip, or one MULTI/EXEC, for a whole batch). The same
catalogue describes the bus to FastStream for its AsyncAPI document (:mod:`marketbus.asyncapi`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from marketbus import wire
from marketbus.contracts import Bar, Command, DeadLetter, Query, Signal, SignalBatch, Tick
from marketbus.keys import COMMANDS_GROUP, QUERIES_GROUP, SCORECARD_GROUP, SIGNALS_GROUP, Keys

if TYPE_CHECKING:
    from marketbus.settings import Settings

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Stream(Generic[M]):
    """One stream: ``attr`` names its key in :class:`Keys`, ``maxlen_setting`` its bound in the
    settings."""

    attr: str
    model: type[M]
    maxlen_setting: str
    description: str
    published_by: str

    def key(self, keys: Keys) -> str:
        key: str = getattr(keys, self.attr)
        return key

    def maxlen(self, settings: Settings) -> int:
        value: int = getattr(settings, self.maxlen_setting)
        return value


@dataclass(frozen=True)
class Group(Generic[M]):
    """A consumer group on a stream: every worker of ``service`` shares it (each entry is handled
    by one of them, at least once)."""

    stream: Stream[M]
    name: str
    service: str
    description: str


TICKS = Stream("ticks", Tick, "ticks_maxlen", "quote snapshots as the providers send them", "quotes")
BARS = Stream("bars", Bar, "bars_maxlen", "closed k-line bars of every period (1m to 1M)", "quotes")
SIGNALS = Stream("signals", Signal, "signals_maxlen", "buy/sell signals, provisional and final", "signals")
COMMANDS = Stream(
    "commands",
    Command,
    "commands_maxlen",
    "jobs for the signals service (calc_signals)",
    "gateway, cli, signals",
)
DLQ = Stream(
    "dlq",
    DeadLetter,
    "dlq_maxlen",
    "entries that could not be read or kept failing, with their error",
    "any consumer",
)
QUERIES = Stream(
    "queries",
    Query,
    "queries_maxlen",
    "questions for the signals service (evaluate strategies, analyse an index); each answer is "
    "pushed to the query's reply key (see marketbus.queries)",
    "gateway",
)
SIGNALS_HISTORY = Stream(
    "signals_history",
    SignalBatch,
    "signals_history_maxlen",
    "the history run's closed-bar signals, every strategy at every stored bar (one entry per code and "
    "period)",
    "signals (history run)",
)
STREAMS: tuple[Stream[Any], ...] = (TICKS, BARS, SIGNALS, COMMANDS, DLQ, QUERIES, SIGNALS_HISTORY)

BAR_SIGNALS = Group(BARS, SIGNALS_GROUP, "signals", "strategies on every closed bar's trend window")
COMMAND_JOBS = Group(COMMANDS, COMMANDS_GROUP, "signals", "full-market scans, one at a time across workers")
QUERY_ANSWERS = Group(
    QUERIES, QUERIES_GROUP, "signals", "answers queries apart from bars and scans (a scan never delays one)"
)
SCORE_SIGNALS = Group(SIGNALS, SCORECARD_GROUP, "scorecard", "scores every closed-bar signal")
SCORE_HISTORY = Group(SIGNALS_HISTORY, SCORECARD_GROUP, "scorecard", "scores the history run's signals")
SCORE_BARS = Group(BARS, SCORECARD_GROUP, "scorecard", "follows the bars after each scored signal")
GROUPS: tuple[Group[Any], ...] = (
    BAR_SIGNALS,
    COMMAND_JOBS,
    QUERY_ANSWERS,
    SCORE_SIGNALS,
    SCORE_HISTORY,
    SCORE_BARS,
)


XADD_MANY_LUA = """
local key, maxlen, field = KEYS[1], ARGV[1], ARGV[2]
for i = 3, #ARGV do
  redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', field, ARGV[i])
end
return #ARGV - 2
"""
"""XADD of each argument after the bound and the field name, in order (``add_many_encoded``)."""


class Publisher(Generic[M]):
    """The publisher of one stream: entries in the wire format, bounded by approximate MAXLEN."""

    def __init__(self, stream: Stream[M], key: str, maxlen: int, client: Any = None) -> None:
        self.stream = stream
        self.key = key
        self.maxlen = maxlen
        self.client = client

    @classmethod
    def of(cls, stream: Stream[M], keys: Keys, settings: Settings, client: Any = None) -> Publisher[M]:
        return cls(stream, stream.key(keys), stream.maxlen(settings), client)

    def add(self, pipe: Any, message: M) -> Any:
        """Queue the XADD of ``message`` on a pipeline (sync or async); the caller executes it."""
        return pipe.xadd(self.key, wire.encode(message), maxlen=self.maxlen, approximate=True)

    def add_encoded(self, pipe: Any, fields: Mapping[str, bytes]) -> Any:
        """Queue the XADD of an entry already in the wire format (``wire.encode``'s fields, or the
        same built by a hot path that encodes each message once for several uses)."""
        return pipe.xadd(self.key, fields, maxlen=self.maxlen, approximate=True)

    def add_many_encoded(self, pipe: Any, payloads: Sequence[bytes]) -> Any:
        """Queue the XADD of many entries, each ``payloads[i]`` as its ``data`` field, as one
        command (a server-side loop of XADD, :data:`XADD_MANY_LUA`): the same entries as one XADD
        each, without a command and a reply per entry on the client. Inside MULTI/EXEC too."""
        return pipe.eval(XADD_MANY_LUA, 1, self.key, self.maxlen, wire.DATA_FIELD, *payloads)

    async def publish(self, message: M) -> str:
        """XADD one message on the publisher's client; its entry id."""
        entry_id = await self.client.xadd(
            self.key, wire.encode(message), maxlen=self.maxlen, approximate=True
        )
        return wire.text(entry_id)

    async def publish_batch(self, messages: Sequence[M]) -> list[str]:
        """XADD all of them in one round trip (not a transaction); their entry ids, in order."""
        if not messages:
            return []
        pipe = self.client.pipeline(transaction=False)
        for message in messages:
            self.add(pipe, message)
        return [wire.text(i) for i in await pipe.execute()]
