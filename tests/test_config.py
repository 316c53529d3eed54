"""Server configuration: defaults and the URLs printed for clients."""

from __future__ import annotations

from pathlib import Path

from dawserver.config import DEFAULT_PORT, ServerConfig


def test_defaults_are_embedded_and_local() -> None:
    config = ServerConfig()
    assert (config.host, config.port, config.database_url) == ("127.0.0.1", DEFAULT_PORT, None)
    assert config.data_dir == Path("data") and config.plugins == {}


def test_urls_follow_host_port_or_the_public_url() -> None:
    config = ServerConfig(host="0.0.0.0", port=9000, data_dir="x")
    assert isinstance(config.data_dir, Path)
    assert config.base_url == "http://0.0.0.0:9000"
    assert config.collab_url == "ws://0.0.0.0:9000/collab"
    public = ServerConfig(public_url="https://daw.example.org")
    assert public.collab_url == "wss://daw.example.org/collab"
