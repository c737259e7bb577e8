"""Find MovieLens on disk, or download ml-latest-small once and verify its checksums."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

import platformdirs

logger = logging.getLogger("reco")

MOVIELENS_URL = "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"
MOVIELENS_FOLDER = "ml-latest-small"
# sha256 of the files reco-db reads, from the copy of ml-latest-small it was built on.
MOVIELENS_SHA256 = {
    "ratings.csv": "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
    "movies.csv": "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
}
REQUIRED_FILES = tuple(MOVIELENS_SHA256)
TIMEOUT_S = 30
CHUNK_BYTES = 1 << 16

Progress = Callable[[int, "int | None"], None]


class FetchError(RuntimeError):
    """MovieLens is neither where it was said to be nor downloadable intact."""


def movielens_folder(
    path: str | Path | None = None,
    *,
    url: str = MOVIELENS_URL,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> Path:
    """A folder holding MovieLens ratings.csv and movies.csv.

    Looks, in order, at ``path`` when given (an error if it lacks the files), at
    ``$RECO_DATA_DIR/movielens-small``, then at the download cache, downloading
    ``url`` into it on first use. Downloaded files are checked against pinned sha256
    checksums each time they are used.

    Args:
        path: an unpacked MovieLens folder to use as is.
        url: where to download the zip from.
        cache_dir: folder for the download; default ``$RECO_CACHE_DIR/movielens``,
            else ``movielens`` in the per-user cache folder of reco-db.
        progress: called as ``progress(done_bytes, total_bytes)`` while
            downloading; ``total_bytes`` is None when the server does not say.
    """
    if path is not None:
        folder = Path(path).expanduser()
        missing = _missing_files(folder)
        if missing:
            raise FetchError(
                f"{folder} has no {' or '.join(missing)}: point to an unpacked "
                "MovieLens folder (ratings.csv and movies.csv), or leave the path "
                "out to download ml-latest-small"
            )
        return folder

    data_dir = os.environ.get("RECO_DATA_DIR")
    if data_dir:
        folder = Path(data_dir).expanduser() / "movielens-small"
        if not _missing_files(folder):
            logger.debug("using movielens from %s", folder)
            return folder

    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    folder = cache / MOVIELENS_FOLDER
    if folder.is_dir():
        _verify(folder, f"in {folder}", cache)
        logger.debug("using cached movielens in %s", folder)
        return folder

    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / f"{MOVIELENS_FOLDER}.zip"
    if not archive.is_file():
        _download(url, archive, progress)
    _extract(archive, folder)
    archive.unlink()
    logger.info("downloaded movielens into %s", folder)
    return folder


def default_cache_dir() -> Path:
    """Where downloads go: $RECO_CACHE_DIR/movielens or the per-user cache."""
    root = os.environ.get("RECO_CACHE_DIR")
    base = Path(root).expanduser() if root else platformdirs.user_cache_path("reco-db")
    return base / "movielens"


def _missing_files(folder: Path) -> list[str]:
    return [name for name in REQUIRED_FILES if not (folder / name).is_file()]


def _download(url: str, archive: Path, progress: Progress | None) -> None:
    """Fetch ``url`` into ``archive`` via a temporary file, renamed when complete."""
    logger.info("downloading %s", url)
    handle = tempfile.NamedTemporaryFile(
        dir=archive.parent, prefix=archive.name, suffix=".part", delete=False
    )
    partial = Path(handle.name)
    try:
        with handle, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            while chunk := response.read(CHUNK_BYTES):
                handle.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        if total is not None and done != total:
            raise http.client.IncompleteRead(b"", total - done)
        os.replace(partial, archive)
    except (
        urllib.error.URLError,
        http.client.HTTPException,
        OSError,
        ValueError,
    ) as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", error)
        raise FetchError(
            f"cannot download {url}: {reason}. Download and unpack it yourself, "
            "then pass its folder as PATH or set RECO_DATA_DIR to a folder holding "
            "movielens-small/"
        ) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _extract(archive: Path, folder: Path) -> None:
    """Unpack ``archive`` and move it to ``folder`` only once its files verify."""
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".extract-"))
    try:
        try:
            with zipfile.ZipFile(archive) as bundle:
                bundle.extractall(staging)
        except zipfile.BadZipFile:
            archive.unlink()
            raise FetchError(
                f"{archive} is not a zip file: the download was not MovieLens. "
                "Try again, or pass a local PATH"
            ) from None
        unpacked = staging / MOVIELENS_FOLDER
        if not unpacked.is_dir():
            unpacked = staging
        missing = _missing_files(unpacked)
        if missing:
            archive.unlink()
            raise FetchError(
                f"{archive} holds no {' or '.join(missing)}: it is not "
                "ml-latest-small. Pass a local PATH instead"
            )
        try:
            _verify(unpacked, f"downloaded from {archive.name}", folder.parent)
        except FetchError:
            archive.unlink()
            raise
        try:
            os.rename(unpacked, folder)
        except OSError:
            # Another process finished the same download first; keep its copy.
            if not folder.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _verify(folder: Path, where: str, cache: Path) -> None:
    """Check the pinned checksums; delete ``folder`` when a file does not match."""
    for name, expected in MOVIELENS_SHA256.items():
        actual = _sha256(folder / name) if (folder / name).is_file() else "missing"
        if actual != expected:
            shutil.rmtree(folder, ignore_errors=True)
            raise FetchError(
                f"{name} {where} does not match its pinned checksum: "
                f"expected sha256 {expected}, got {actual}. The bad files were "
                "removed; run again to download afresh (or remove the cache folder "
                f"{cache}), or pass a local MovieLens folder as PATH"
            )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
