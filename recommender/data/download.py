"""Downloading a MovieLens zip: resumable, verified, and atomic.

Bytes go to `<name>.part`; an interrupted download resumes from there with an HTTP Range
request. Only a complete file that passes the published MD5 sum and the zip's own CRC check is
renamed to its final name, so a file under the final name is always whole.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
Opener = Callable[[urllib.request.Request], BinaryIO]


class DownloadError(ValueError):
    """A download that could not be completed or verified (a ValueError: the CLI's clean `error:`)."""


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _open(request: urllib.request.Request) -> BinaryIO:
    response: BinaryIO = urllib.request.urlopen(request, timeout=60)
    return response


def fetch_md5(url: str, opener: Opener = _open) -> str | None:
    """The hex digest published at `url` (format: `<hex>  <file>` or `MD5 (file) = <hex>`)."""
    try:
        with opener(urllib.request.Request(url)) as response:
            text = response.read().decode("ascii", errors="replace")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise DownloadError(f"{url}: HTTP {error.code}") from error
    except OSError as error:
        raise DownloadError(f"{url}: {error}") from error
    for token in text.replace("=", " ").split():
        if len(token) == 32 and all(c in "0123456789abcdefABCDEF" for c in token):
            return token.lower()
    raise DownloadError(f"{url}: no MD5 sum found in {text[:80]!r}")


def download(url: str, dest: Path, md5_url: str | None = None, opener: Opener = _open) -> Path:
    """Download `url` to `dest` unless already there; verify it and return `dest`."""
    if dest.exists():
        return dest
    from tqdm import tqdm  # imported here: reading a local set needs no progress bar

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with opener(request) as response:
            status = getattr(response, "status", 200)
            if have and status != 206:  # server ignored the Range: start over
                have = 0
            length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
            total = have + int(length) if length else None
            mode = "ab" if have else "wb"
            with part.open(mode) as out, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=dest.name
            ) as bar:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    bar.update(len(block))
    except urllib.error.HTTPError as error:
        raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from error
    except OSError as error:
        raise DownloadError(f"{url}: {error}{_kept(part)}") from error
    _verify(part, url, md5_url, opener)
    part.replace(dest)
    return dest


def _kept(part: Path) -> str:
    """What an interrupted download leaves: a note on the partial file, or nothing (an empty one is removed)."""
    if part.exists() and part.stat().st_size > 0:
        return f" (partial download kept in {part} for resuming)"
    part.unlink(missing_ok=True)
    return ""


def _verify(part: Path, url: str, md5_url: str | None, opener: Opener) -> None:
    """Check the published MD5 (where GroupLens has one) and every CRC in the zip."""
    expected = fetch_md5(md5_url, opener) if md5_url else None
    if expected is not None:
        actual = md5_of(part)
        if actual != expected:
            part.unlink()
            raise DownloadError(f"{url}: MD5 {actual} does not match the published {expected}")
    try:
        with zipfile.ZipFile(part) as archive:
            broken = archive.testzip()
    except zipfile.BadZipFile as error:
        part.unlink()
        raise DownloadError(f"{url}: not a valid zip ({error})") from error
    if broken is not None:
        part.unlink()
        raise DownloadError(f"{url}: {broken} in the zip fails its CRC check")
