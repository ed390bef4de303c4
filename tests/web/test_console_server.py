"""opendot/console.py: the built console, a config.json per host, nothing outside dist."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opendot.console import ConsoleServer, ConsoleTarget, origins


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>OpenDot console</title>")
    (dist / "assets" / "index-abc.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("outside")
    server = ConsoleServer(0, ConsoleTarget(8788, 8787), dist, host="127.0.0.1")
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def test_serves_files_config_and_nothing_else(served: str) -> None:
    with httpx.Client(base_url=served) as client:
        index = client.get("/")
        assert index.status_code == 200 and "OpenDot console" in index.text
        assert index.headers["cache-control"] == "no-cache"
        asset = client.get("/assets/index-abc.js")
        assert asset.headers["content-type"].startswith("text/javascript")
        assert "immutable" in asset.headers["cache-control"]
        config = client.get("/config.json", headers={"Host": "127.0.0.1:9"})
        assert config.headers["cache-control"] == "no-store"
        assert json.loads(config.text) == {
            "apiUrl": "http://127.0.0.1:8788/api",
            "runtimeWsUrl": "ws://127.0.0.1:8787/voice",
            "runtimeHttpUrl": "http://127.0.0.1:8787",
            "authMode": "local",
        }
        odd = client.get("/config.json", headers={"Host": 'x"y;alert(1)'})
        assert json.loads(odd.text)["apiUrl"] == "http://localhost:8788/api"
        for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/nope.js"):
            assert client.get(path).status_code == 404, path


def test_supabase_mode_and_origins() -> None:
    target = ConsoleTarget(1, 2, "https://ref.supabase.co", "anon")
    config = target.config("localhost")
    assert config["authMode"] == "supabase" and config["supabaseAnonKey"] == "anon"
    assert origins(8780) == ["http://localhost:8780", "http://127.0.0.1:8780"]
