"""The scorecard service process: three consumer groups on the library's runtime (the signals, the
history run's signals, the bars) and two periodic tasks (pending outcomes, the figures); one asyncio
loop owning its client."""

from __future__ import annotations

import asyncio
import logging
import signal

from marketbus.consumer import Runtime
from marketbus.contracts import Bar, Signal, SignalBatch
from marketbus.settings import Settings, load_settings
from marketbus.streams import SCORE_BARS, SCORE_HISTORY, SCORE_SIGNALS
from scorecard.scorer import Scorer

log = logging.getLogger("scorecard")

HISTORY_BATCH = 5  # history entries per call (each holds up to a few thousand signals)
SWEEP_S = 5.0  # pending outcomes the bar handler missed are brought up to date this often


class ScorecardService:
    def __init__(self, settings: Settings) -> None:
        self.runtime = rt = Runtime(settings, "scorecard")
        self.settings = settings
        self.keys = rt.keys
        self.scorer: Scorer | None = None
        rt.on_start(self._start)
        rt.consume(SCORE_SIGNALS, self._on_signals)
        rt.consume(SCORE_HISTORY, self._on_history, batch=HISTORY_BATCH)
        rt.consume(SCORE_BARS, self._on_bars)
        rt.every(SWEEP_S, self._sweep, "pending outcomes")
        rt.every(settings.scorecard_refresh, self._refresh, "figures")
        rt.stats(self._stats)

    async def run(self) -> None:
        await self.runtime.run()

    def stop(self) -> None:
        self.runtime.stop()

    async def _start(self) -> None:
        self.scorer = Scorer(self.runtime.client, self.keys, self.settings)
        log.info(
            "scorecard worker %s: min samples %d", self.runtime.consumer, self.settings.scorecard_min_samples
        )

    def _need(self) -> Scorer:
        if self.scorer is None:
            raise RuntimeError("the scorecard has not started")
        return self.scorer

    async def _on_signals(self, signals: list[Signal]) -> None:
        await self._need().on_signals(signals)

    async def _on_history(self, batches: list[SignalBatch]) -> None:
        await self._need().on_history(batches)

    async def _on_bars(self, bars: list[Bar]) -> None:
        await self._need().on_bars(bars)

    async def _sweep(self) -> None:
        await self._need().sweep()

    async def _refresh(self) -> None:
        await self._need().refresh()

    def _stats(self) -> dict[str, int]:
        if self.scorer is None:
            return {}
        st = self.scorer.stats
        return {
            "signals": st.signals,
            "scored": st.scored,
            "duplicates": st.duplicates,
            "provisional": st.provisional,
            "unscorable": st.unscorable,
            "completed": st.completed,
        }


async def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = ScorecardService(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.stop)
    await service.run()
