"""The MovieLens registry, its counts check, the mirror and cache logic, and the downloader."""

from __future__ import annotations

import hashlib
import http.server
import threading
import urllib.error
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, ClassVar

import numpy as np
import pandas as pd
import pytest

from recommender.data.download import DownloadError, download
from recommender.data.formats import BadInputError
from recommender.data.movielens import SETS, check_counts, get_set
from recommender.data.readers import read_ratings
from recommender.data.sources import DATA_DIR_ENV, parse_synthetic, prepare

pytestmark = pytest.mark.unit
ML100K = SETS["ml-100k"]


def test_registry_is_consistent() -> None:
    assert set(SETS) == {"ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest-small"}
    for spec in SETS.values():
        assert spec.url == f"https://files.grouplens.org/datasets/movielens/{spec.name}.zip"
        assert spec.ratings > spec.users and spec.ratings > spec.movies
        assert spec.member.endswith(spec.ratings_file)
    assert SETS["ml-20m"].ratings == 20_000_263 and SETS["ml-20m"].users == 138_493
    with pytest.raises(ValueError, match="unknown MovieLens data set 'ml-5m'; known: ml-100k"):
        get_set("ml-5m")


def test_ml100k_from_the_mirror_has_the_published_counts(movielens_dir: Path) -> None:
    frame = read_ratings(movielens_dir / "ml-100k" / "u.data", ML100K.fmt).frame
    check_counts(ML100K, frame, "u.data")  # raises on any mismatch
    assert sorted(frame["rating"].unique()) == [1, 2, 3, 4, 5]


def test_truncated_file_fails_the_counts_check(movielens_dir: Path) -> None:
    frame = read_ratings(movielens_dir / "ml-100k" / "u.data", ML100K.fmt).frame
    with pytest.raises(ValueError, match=r"ratings: expected 100,000, found 99,000.*truncated"):
        check_counts(ML100K, frame.iloc[:99_000], "u.data")
    shifted = frame.assign(rating=frame["rating"] * 2)
    first = int(np.flatnonzero(shifted["rating"].to_numpy() > 5)[0])
    with pytest.raises(BadInputError, match=rf"u\.data, line {first + 1}: rating \d+ is off ml-100k's scale "
                                            r"\(1 to 5 in steps of 1\)"):
        check_counts(ML100K, shifted, "u.data")


def test_prepare_from_extracted_mirror_then_reuses_cache(movielens_dir: Path, tmp_path: Path) -> None:
    first = prepare("ml-100k", movielens_dir, tmp_path)
    assert first.ratings == 100_000 and first.source.endswith("ml-100k/u.data")
    csv = Path(first.csv)
    assert csv.read_text().splitlines()[0] == "196,242,3"  # u.data's first line, study format
    assert pd.read_parquet(first.parquet).shape == (100_000, 3)
    stamp = csv.stat().st_mtime_ns
    again = prepare("ml-100k", movielens_dir, tmp_path)
    assert again == first and csv.stat().st_mtime_ns == stamp  # cached, not rewritten


def make_zip(movielens_dir: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(movielens_dir / "ml-100k" / "u.data", "ml-100k/u.data")
    return dest


def test_prepare_from_a_mirror_zip(movielens_dir: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    make_zip(movielens_dir, mirror / "ml-100k.zip")
    prepared = prepare("ml-100k", mirror, tmp_path / "cache")
    assert prepared.ratings == 100_000
    assert Path(prepared.source) == tmp_path / "cache" / "raw" / "ml-100k" / "u.data"


def test_mirror_is_read_from_the_environment(movielens_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(movielens_dir))
    assert prepare("ml-100k", cache_dir=tmp_path).source == str(movielens_dir / "ml-100k" / "u.data")


def test_missing_mirror_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"mirror folder .*nowhere does not exist"):
        prepare("ml-100k", tmp_path / "nowhere", tmp_path)


def test_synthetic_names() -> None:
    assert parse_synthetic("synthetic:ml-20m") == ("ml-20m", 0)
    assert parse_synthetic("synthetic:ml-1m:7") == ("ml-1m", 7)
    with pytest.raises(ValueError, match="seed 'x' is not a non-negative integer"):
        parse_synthetic("synthetic:ml-1m:x")


def test_prepare_synthetic_is_cached_with_its_noise_floor(tmp_path: Path) -> None:
    prepared = prepare("synthetic:ml-100k:3", None, tmp_path)
    assert prepared.ratings == 100_000 and prepared.users == 943
    assert prepared.oracle_mse is not None and 0.2 < prepared.oracle_mse < 0.5
    assert prepare("synthetic:ml-100k:3", None, tmp_path) == prepared


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with HTTP Range support, and counts the Range headers it was sent."""

    ranges: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        if "Range" in self.headers:
            RangeHandler.ranges.append(self.headers["Range"])
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            self.send_response(206)
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **k: RangeHandler(*a, directory=str(root), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    RangeHandler.ranges = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()


def test_download_verifies_md5_and_resumes(server, movielens_dir: Path, tmp_path: Path) -> None:
    url, root = server
    archive = make_zip(movielens_dir, root / "ml-100k.zip")
    digest = hashlib.md5(archive.read_bytes()).hexdigest()
    (root / "ml-100k.zip.md5").write_text(f"{digest}  ml-100k.zip\n")
    dest = tmp_path / "dl" / "ml-100k.zip"
    dest.parent.mkdir()
    half = archive.read_bytes()[: archive.stat().st_size // 2]
    dest.with_name("ml-100k.zip.part").write_bytes(half)  # an interrupted earlier download

    download(f"{url}/ml-100k.zip", dest, f"{url}/ml-100k.zip.md5")
    assert RangeHandler.ranges == [f"bytes={len(half)}-"]
    assert dest.read_bytes() == archive.read_bytes()
    assert not dest.with_name("ml-100k.zip.part").exists()


def test_download_with_wrong_md5_leaves_no_file(server, movielens_dir: Path, tmp_path: Path) -> None:
    url, root = server
    make_zip(movielens_dir, root / "ml-100k.zip")
    (root / "ml-100k.zip.md5").write_text("MD5 (ml-100k.zip) = 0123456789abcdef0123456789abcdef\n")
    dest = tmp_path / "ml-100k.zip"
    with pytest.raises(DownloadError, match="does not match the published 0123456789abcdef"):
        download(f"{url}/ml-100k.zip", dest, f"{url}/ml-100k.zip.md5")
    assert list(tmp_path.glob("ml-100k.zip*")) == []


def test_download_of_a_broken_zip_is_refused(server, tmp_path: Path) -> None:
    url, root = server
    (root / "ml-100k.zip").write_bytes(b"this is not a zip")
    dest = tmp_path / "ml-100k.zip"
    with pytest.raises(DownloadError, match="not a valid zip"):
        download(f"{url}/ml-100k.zip", dest, f"{url}/ml-100k.zip.md5")  # no .md5 published: 404
    assert not dest.exists()


def test_download_of_a_missing_file_names_the_url(server, tmp_path: Path) -> None:
    url, _ = server
    with pytest.raises(DownloadError, match=r"ml-1m\.zip: HTTP 404"):
        download(f"{url}/ml-1m.zip", tmp_path / "ml-1m.zip")


def test_no_network_is_a_clean_error_that_claims_no_partial_file(tmp_path: Path) -> None:
    def offline(request: object) -> BinaryIO:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    dest = tmp_path / "ml-1m.zip"
    with pytest.raises(ValueError) as info:  # DownloadError is a ValueError: the CLI prints `error:`, exit 2
        download("https://files.grouplens.org/datasets/movielens/ml-1m.zip", dest, opener=offline)
    assert isinstance(info.value, DownloadError)
    assert "name resolution" in str(info.value) and "partial" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_prepared_file_is_not_reused(movielens_dir: Path, tmp_path: Path) -> None:
    first = prepare("ml-100k", movielens_dir, tmp_path)
    csv = Path(first.csv)
    whole = csv.read_bytes()
    csv.write_bytes(whole[: len(whole) // 2])  # truncated, as by a full disk or a killed copy
    again = prepare("ml-100k", movielens_dir, tmp_path)
    assert Path(again.csv).read_bytes() == whole
    (tmp_path / "prepared" / "ml-100k" / "meta.json").write_text("{not json")
    assert prepare("ml-100k", movielens_dir, tmp_path).ratings == 100_000


def test_a_file_named_like_a_data_set_is_read_as_a_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("ml-mine.csv").write_text("1,2,3\n")
    assert prepare("ml-mine.csv", None, tmp_path).csv == "ml-mine.csv"
    with pytest.raises(ValueError, match="unknown MovieLens data set 'ml-5m'"):
        prepare("ml-5m", None, tmp_path)
