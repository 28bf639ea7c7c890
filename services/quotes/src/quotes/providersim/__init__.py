"""A provider simulator: a real HTTP server on loopback that answers like eastmoney, sina and tencent.

For tests and benchmarks only (no live endpoint is ever called from the suite). ``market`` is the
pure generated market, ``app`` the ASGI app (list endpoint, three quote formats, control
endpoints), ``__main__`` the process (``python -m quotes.providersim --port P``) and ``launch``
a helper that starts it as a subprocess and waits until it answers.
"""
