"""The Max Booster Studio server: HTTP API, WebSocket endpoints and the CLI."""
