"""One WebSocket client's bounded queue of outgoing text frames.

Two kinds of frame share one FIFO, so a client sees them in the order they were made:

- replies (``connected``, ``subscribed``, ``pong``, ``error``) wait for room (:meth:`Outbox.reply`):
  a client that sends faster than it reads slows only its own reading;
- pushes (``price_update``) never wait (:meth:`Outbox.push`): the hub offers one round to every
  client at once. When the queue is full, the oldest queued push makes room and is counted as
  dropped (a later push carries newer prices). A client that has fallen a whole queue behind
  (``maxsize`` pushes dropped since it last took a frame) is to be disconnected: ``push`` answers
  False.

Memory per client is bounded by ``maxsize`` frames; no client slows another.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field


@dataclass(eq=False)
class Outbox:
    maxsize: int = 16
    items: deque[tuple[str, bool]] = field(default_factory=deque)  # (text, is a push)
    dropped: int = 0  # pushes dropped in all
    behind: int = 0  # pushes dropped since the client last took a frame
    closed: bool = False
    _wake: asyncio.Event = field(default_factory=asyncio.Event)  # set: something to take, or closed
    _room: asyncio.Event = field(default_factory=asyncio.Event)  # set: room for a reply, or closed

    def __post_init__(self) -> None:
        if self.maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {self.maxsize}")
        self._room.set()

    def __len__(self) -> int:
        return len(self.items)

    def push(self, text: str) -> bool:
        """Queue a push. False when the client has fallen ``maxsize`` pushes behind."""
        if self.closed:
            return True
        if self.behind >= self.maxsize:  # stays behind until it takes a frame
            self.dropped += 1
            return False
        if len(self.items) >= self.maxsize:
            self.dropped += 1
            self.behind += 1
            oldest = next((i for i, (_, is_push) in enumerate(self.items) if is_push), None)
            if oldest is None:  # full of replies: this push is the one dropped
                return self.behind < self.maxsize
            del self.items[oldest]
            if self.behind >= self.maxsize:
                return False
        self._append(text, True)
        return True

    async def reply(self, text: str) -> None:
        """Queue a reply once there is room (returns at once, queueing nothing, once closed)."""
        while len(self.items) >= self.maxsize and not self.closed:
            self._room.clear()
            await self._room.wait()
        if not self.closed:
            self._append(text, False)

    def reply_nowait(self, text: str) -> None:
        """Queue a reply now, over the bound if need be (the greeting, into an empty queue)."""
        if not self.closed:
            self._append(text, False)

    async def take(self) -> str | None:
        """The oldest frame, waiting for one; None once the outbox is closed."""
        while not self.items and not self.closed:
            self._wake.clear()
            await self._wake.wait()
        if self.closed:
            return None
        text, _ = self.items.popleft()
        self.behind = 0
        if len(self.items) < self.maxsize:
            self._room.set()
        return text

    def close(self) -> None:
        """Nothing more is queued or taken; whoever waits is woken."""
        self.closed = True
        self.items.clear()
        self._wake.set()
        self._room.set()

    def _append(self, text: str, is_push: bool) -> None:
        self.items.append((text, is_push))
        self._wake.set()
        if len(self.items) >= self.maxsize:
            self._room.clear()
