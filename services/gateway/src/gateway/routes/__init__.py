"""HTTP routes, one module per area; each route reads Redis through gateway.reads and stays thin."""
