"""The web console's static files, served by `opendot up` next to the API and runtime.

`web/dist` (built by `make up` / `make test`, or `npm run build` in `web/`)
is served as it is, plus a `config.json` made for each request from the
ports `up` chose and the host name the browser used, so the console reaches
the API and runtime on the same host it was opened on. Hashed assets are
cached for a year; `index.html` and `config.json` never. A thread of `up`'s
process serves them (a few small files, no framework needed).
"""

from __future__ import annotations

import json
import mimetypes
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import Field

from shared.settings import BaseOpenDotSettings

DEFAULT_PORT = 8780
# The API's and runtime's default allow-list (a `vite` dev server).
DEV_ORIGINS = ("http://localhost:5173", "http://127.0.0.1:5173")
DIST = Path(__file__).resolve().parents[1] / "web" / "dist"
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}


class ConsoleSettings(BaseOpenDotSettings):
    """What `opendot up` tells the console it serves (`config.json`)."""

    console_dir: Path | None = Field(
        default=None,
        alias="OPENDOT_CONSOLE_DIR",
        description="Built console to serve (default: web/dist of this checkout).",
    )
    supabase_url: str = Field(
        default="",
        alias="SUPABASE_URL",
        description="Supabase project URL; turns on JWKS verification of Supabase JWTs.",
    )
    supabase_anon_key: str = Field(
        default="",
        alias="SUPABASE_ANON_KEY",
        description="Supabase anon (publishable) key the console signs in with; with "
        "SUPABASE_URL, the console served by `opendot up` uses Supabase Auth.",
    )


@dataclass(frozen=True)
class ConsoleTarget:
    api_port: int
    runtime_port: int
    supabase_url: str = ""
    supabase_anon_key: str = ""

    def config(self, host: str) -> dict[str, str]:
        """The console's config.json for a browser that reached us as `host`."""
        doc = {
            "apiUrl": f"http://{host}:{self.api_port}/api",
            "runtimeWsUrl": f"ws://{host}:{self.runtime_port}/voice",
            "runtimeHttpUrl": f"http://{host}:{self.runtime_port}",
            "authMode": "supabase" if self.supabase_url and self.supabase_anon_key else "local",
        }
        if doc["authMode"] == "supabase":
            doc["supabaseUrl"] = self.supabase_url
            doc["supabaseAnonKey"] = self.supabase_anon_key
        return doc


def dist_dir(settings: ConsoleSettings | None = None) -> Path:
    found = (settings or ConsoleSettings()).console_dir
    return found if found is not None else DIST


def built(directory: Path | None = None) -> bool:
    return ((directory or dist_dir()) / "index.html").is_file()


def origins(port: int) -> list[str]:
    return [f"http://localhost:{port}", f"http://127.0.0.1:{port}"]


def _host_name(header: str | None) -> str:
    """`localhost:8780` → `localhost`; anything odd falls back to localhost."""
    name = urlsplit(f"//{header or ''}").hostname or "localhost"
    return name if name.replace(".", "").replace("-", "").isalnum() else "localhost"


def _handler(root: Path, target: ConsoleTarget) -> type[BaseHTTPRequestHandler]:
    root = root.resolve()

    class Handler(BaseHTTPRequestHandler):
        server_version = "opendot-console"

        def log_message(self, format: str, *args: object) -> None:
            return  # quiet: `up` prints what matters

        def _send(self, status: int, body: bytes, kind: str, cache: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", cache)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            if path == "/config.json":
                body = json.dumps(target.config(_host_name(self.headers.get("Host")))).encode()
                self._send(200, body, "application/json", "no-store")
                return
            relative = "index.html" if path in ("", "/") else path.lstrip("/")
            file = (root / relative).resolve()
            if not file.is_relative_to(root) or not file.is_file():
                self._send(404, b"Not found\n", "text/plain; charset=utf-8", "no-store")
                return
            kind = (
                _TYPES.get(file.suffix)
                or mimetypes.guess_type(file.name)[0]
                or "application/octet-stream"
            )
            if kind.startswith("text/") and "charset" not in kind:
                kind += "; charset=utf-8"
            immutable = file.parent.name == "assets"
            cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
            self._send(HTTPStatus.OK, file.read_bytes(), kind, cache)

    return Handler


class ConsoleServer:
    """The console on `port`, in a daemon thread until `stop()`."""

    def __init__(
        self, port: int, target: ConsoleTarget, root: Path | None = None, host: str = ""
    ) -> None:
        self.httpd = ThreadingHTTPServer((host, port), _handler(root or dist_dir(), target))
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="console", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
