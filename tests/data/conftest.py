"""Fixtures for the data tests: CSVs with bad rows, a local HTTP server, no real network."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from pathlib import Path

import pytest

import helpers


@pytest.fixture(autouse=True)
def no_real_network(monkeypatch):
    """Refuse every connection that is not to this machine, and ignore proxy settings."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    original = socket.socket.connect

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "localhost", "::1"):
            raise RuntimeError(f"test tried to reach the network: {address}")
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def clean_data_env(monkeypatch, tmp_path):
    """No CRYSTENS_DATA_DIR from the caller's shell; downloads (if any) go to tmp_path."""
    monkeypatch.delenv("CRYSTENS_DATA_DIR", raising=False)
    monkeypatch.setenv("CRYSTENS_CACHE_DIR", str(tmp_path / "crystens-cache"))


@pytest.fixture(scope="session")
def bad_csv(tmp_path_factory) -> helpers.BadCsv:
    """8 real MP-20 validation rows with an unparsable, an empty, a disordered and an oversized row."""
    return helpers.write_csv_with_bad_rows(tmp_path_factory.mktemp("bad") / "with_bad_rows.csv")


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep the test output quiet
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()


class LocalServer:
    """``http.server`` on 127.0.0.1 (port 0) serving ``root`` from a thread."""

    def __init__(self, root: Path):
        self.root = root
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
        self.httpd.requests = []
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.running = True

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def requests(self) -> list[str]:
        return self.httpd.requests

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def stop(self) -> None:
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(5)
            self.running = False


@pytest.fixture
def local_server(tmp_path):
    """A local server whose folder holds ``mp_20/test.csv``: 5 real MP-20 validation rows."""
    root = tmp_path / "served"
    (root / "mp_20").mkdir(parents=True)
    columns, rows = helpers.read_rows(limit=5)
    helpers.write_csv(root / "mp_20" / "test.csv", columns, rows)
    server = LocalServer(root)
    server.rows = rows
    try:
        yield server
    finally:
        server.stop()
