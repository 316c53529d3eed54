"""Usage of each API key per day: metered in memory, flushed to ``api_usage``."""
