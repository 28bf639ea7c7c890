"""The chart pages the old app opens in a WebView (OLD_API.md P8 and the index chart of P9): the
request's parameters (``params``), the page's data shaped from stored bars and signals
(``payload``), and the HTML around it (``render``; the page, its script and style in ``static/``).
The page draws with the TradingView Lightweight Charts build the dashboard already serves."""
