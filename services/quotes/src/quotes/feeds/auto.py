"""``auto``: eastmoney, failing over to sina, then tencent, when a provider errors or times out."""

from __future__ import annotations

from quotes.feeds.base import Feed, FeedContext
from quotes.feeds.eastmoney import EastMoney
from quotes.feeds.poll import create_poll_feed
from quotes.feeds.sina import Sina
from quotes.feeds.tencent import Tencent


def create(ctx: FeedContext) -> Feed:
    return create_poll_feed(ctx, [EastMoney(), Sina(), Tencent()])
