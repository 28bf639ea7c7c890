"""marketbus gateway: a thin FastAPI process over Redis (REST, SSE, dashboard).

It reads what the quotes and signals services wrote and publishes commands; it never computes
quotes or signals. Nothing here connects or reads settings at import time: see :mod:`gateway.app`.
"""
