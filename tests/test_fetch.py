"""Finding and downloading MovieLens, served from a loopback HTTP server."""

from __future__ import annotations

import http.server
import socket
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import data_dir

from reco.fetch import FetchError, movielens_folder


class Server:
    """Serves bytes at /ml-latest-small.zip and counts the requests."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.requests = 0
        served = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                served.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(served.payload)))
                self.end_headers()
                self.wfile.write(served.payload)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        host, port = self.httpd.server_address[:2]
        self.url = f"http://{host}:{port}/ml-latest-small.zip"


@pytest.fixture
def serve(tmp_path) -> Iterator:
    servers = []

    def start(payload: bytes) -> Server:
        server = Server(payload)
        threading.Thread(target=server.httpd.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.httpd.shutdown()
        server.httpd.server_close()


@pytest.fixture(autouse=True)
def local_copy(monkeypatch) -> Path:
    """The real MovieLens folder, noted before $RECO_DATA_DIR is taken away so that
    it cannot answer before the download is tried."""
    folder = data_dir() / "movielens-small"
    monkeypatch.delenv("RECO_DATA_DIR", raising=False)
    monkeypatch.delenv("RECO_CACHE_DIR", raising=False)
    return folder


@pytest.fixture
def source(local_copy: Path) -> Path:
    if not (local_copy / "ratings.csv").is_file():
        pytest.skip(f"MovieLens not found at {local_copy}: set RECO_DATA_DIR")
    return local_copy


def movielens_zip(source: Path, path: Path, tamper: bool = False) -> bytes:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bundle:
        for name in ("movies.csv", "ratings.csv", "README.txt"):
            data = (source / name).read_bytes()
            if tamper and name == "ratings.csv":
                data = data.replace(b"1,1,4.0,", b"1,1,5.0,", 1)
            bundle.writestr(f"ml-latest-small/{name}", data)
    return path.read_bytes()


def test_download_verifies_extracts_and_is_reused(tmp_path, serve, source):
    server = serve(movielens_zip(source, tmp_path / "ml.zip"))
    cache = tmp_path / "cache"
    seen = []

    folder = movielens_folder(
        url=server.url, cache_dir=cache, progress=lambda *p: seen.append(p)
    )

    assert folder == cache / "ml-latest-small"
    assert (folder / "ratings.csv").read_bytes() == (
        source / "ratings.csv"
    ).read_bytes()
    assert seen[-1] == (len(server.payload), len(server.payload))
    assert sorted(p.name for p in cache.iterdir()) == ["ml-latest-small"]

    assert movielens_folder(url=server.url, cache_dir=cache) == folder
    assert server.requests == 1


def test_tampered_download_fails_its_checksum_and_leaves_nothing(
    tmp_path, serve, source
):
    server = serve(movielens_zip(source, tmp_path / "ml.zip", tamper=True))
    cache = tmp_path / "cache"

    with pytest.raises(FetchError) as caught:
        movielens_folder(url=server.url, cache_dir=cache)

    message = str(caught.value)
    assert "ratings.csv" in message
    assert "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646" in message
    assert "remove the cache folder" in message and "PATH" in message
    assert list(cache.iterdir()) == []


def test_tampered_cache_is_caught_on_reuse(tmp_path, serve, source):
    server = serve(movielens_zip(source, tmp_path / "ml.zip"))
    cache = tmp_path / "cache"
    folder = movielens_folder(url=server.url, cache_dir=cache)
    (folder / "movies.csv").write_text("movieId,title,genres\n")

    with pytest.raises(FetchError, match="movies.csv in .* does not match"):
        movielens_folder(url=server.url, cache_dir=cache)

    assert not folder.exists()
    assert movielens_folder(url=server.url, cache_dir=cache) == folder
    assert server.requests == 2


def test_explicit_path_must_hold_the_csv_files(tmp_path, source):
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n")

    with pytest.raises(FetchError, match="has no ratings.csv: point to an unpacked"):
        movielens_folder(tmp_path)

    assert movielens_folder(source) == source


def test_data_dir_answers_before_the_cache(monkeypatch, source):
    monkeypatch.setenv("RECO_DATA_DIR", str(source.parent))

    assert movielens_folder(url="http://127.0.0.1:9/none.zip") == source


def test_unreachable_url_suggests_a_local_copy(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cache = tmp_path / "cache"

    with pytest.raises(FetchError, match="cannot download.*RECO_DATA_DIR"):
        movielens_folder(url=f"http://127.0.0.1:{port}/ml.zip", cache_dir=cache)

    assert list(cache.iterdir()) == []


def test_not_a_zip_is_reported_and_removed(tmp_path, serve):
    server = serve(b"<html>moved</html>")
    cache = tmp_path / "cache"

    with pytest.raises(FetchError, match="is not a zip file"):
        movielens_folder(url=server.url, cache_dir=cache)

    assert list(cache.iterdir()) == []
