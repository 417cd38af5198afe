"""Writing a fractal expansion to partitioned Parquet (and the study's CSV), resumably, on any filesystem.

One part per block row a: `ratings.parquet/part-AAAAA.parquet` holds blocks (a, 0) .. (a, C-1), in
row groups of at most ROW_GROUP ratings, so memory is bounded by the base and one row group, not
by the output. A part is written under a temporary name and renamed; then a small record in
`_done/` says it is complete (with its counts), so a rerun keeps every part it finds recorded. The
same function writes a part whether a local loop or a Spark task calls it, so both give the same
bytes. Paths may be local or any URI that pyarrow.fs opens (s3://, hdfs://).
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from recommender.data.fractal import Base, FractalSpec, expand_block, expected_ratings
from recommender.data.readers import ITEM, RATING, USER

ROW_GROUP = 1 << 20
VERSION = 2  # bump when the written bytes would change (2: kept ratings drawn by geometric gaps)
PARQUET_DIR, CSV_PARTS, CSV_FILE, DONE, MANIFEST, KEY = (
    "ratings.parquet", "csv-parts", "ratings.csv", "_done", "_manifest.json", "_key.json",
)
SCHEMA = pa.schema([(USER, pa.int32()), (ITEM, pa.int32()), (RATING, pa.float32())])


@dataclass(frozen=True, eq=False)
class Plan:
    """What to write where: the expansion (spec, base, keep-probabilities) and the output folder."""

    spec: FractalSpec
    base: Base
    keep: np.ndarray  # R x C keep-probabilities
    out: str  # a local folder or a URI
    csv: bool = False  # also write the study's CSV

    def key(self, source: object) -> dict[str, object]:
        """What identifies the output: a folder holding another key is stale."""
        return {
            "version": VERSION, "spec": self.spec.name, "source": source,
            "keep": [round(float(p), 12) for p in self.keep.ravel()],
        }


@dataclass(frozen=True)
class PartRecord:
    """A written part: its ratings, its distinct users, and which of the expanded items it has."""

    row: int
    ratings: int
    users: int
    items: bytes  # np.packbits of a C * n_items presence mask


@dataclass(frozen=True)
class Manifest:
    """A finished expansion: where its files are and what they hold."""

    name: str
    rows: int
    cols: int
    seed: int
    base_ratings: int
    base_users: int
    base_items: int
    ratings: int
    users: int  # distinct users with at least one rating
    items: int  # distinct items with at least one rating
    expected_ratings: float  # the sum of the keep-probabilities times the base count
    parquet: str  # a folder of part-AAAAA.parquet files
    csv: str | None  # one file on a local disk, a folder of parts elsewhere; None when not asked for
    seconds: float  # generation time of the run that finished it
    keep: list[list[float]]


def part_name(row: int) -> str:
    return f"part-{row:05d}"


def _filesystem(out: str) -> tuple[pafs.FileSystem, str]:
    if urlparse(out).scheme in ("", "file"):
        return pafs.LocalFileSystem(), str(Path(urlparse(out).path or out).resolve())
    return pafs.FileSystem.from_uri(out)


def _exists(fs: pafs.FileSystem, path: str) -> bool:
    return bool(fs.get_file_info(path).type != pafs.FileType.NotFound)


def _write_bytes(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with fs.open_output_stream(tmp) as out:
        out.write(data)
    fs.move(tmp, path)


def write_part(plan: Plan, row: int) -> PartRecord:
    """Expand block row `row` into its Parquet part (and CSV part), then record it as done."""
    fs, root = _filesystem(plan.out)
    base, name = plan.base, part_name(row)
    parquet = f"{root}/{PARQUET_DIR}/{name}.parquet"
    csv = f"{root}/{CSV_PARTS}/{name}.csv"
    for folder in (PARQUET_DIR, DONE) + ((CSV_PARTS,) if plan.csv else ()):
        fs.create_dir(f"{root}/{folder}", recursive=True)
    seen_users = np.zeros(base.n_users, dtype=bool)
    seen_items = np.zeros(plan.spec.cols * base.n_items, dtype=bool)
    ratings = 0
    with ExitStack() as stack:
        pw = stack.enter_context(pq.ParquetWriter(stack.enter_context(fs.open_output_stream(parquet + ".tmp")), SCHEMA))
        cw = None
        if plan.csv:
            options = pacsv.WriteOptions(include_header=False)
            cw = stack.enter_context(pacsv.CSVWriter(stack.enter_context(fs.open_output_stream(csv + ".tmp")), SCHEMA,
                                                     write_options=options))
        pending: list[tuple[np.ndarray, ...]] = []
        pending_rows = 0
        for b in range(plan.spec.cols):
            users, items, values = expand_block(base, plan.keep, plan.spec.seed, row, b)
            seen_users[users - row * base.n_users] = True
            seen_items[items] = True
            ratings += len(users)
            pending.append((users, items, values))
            pending_rows += len(users)
            if pending_rows >= ROW_GROUP or b == plan.spec.cols - 1:
                columns = [pa.array(np.concatenate(column)) for column in zip(*pending, strict=True)]
                table = pa.Table.from_arrays(columns, schema=SCHEMA)
                pw.write_table(table, row_group_size=max(pending_rows, 1))
                if cw is not None:
                    cw.write_table(table)
                pending, pending_rows = [], 0
    if plan.csv:
        fs.move(csv + ".tmp", csv)
    fs.move(parquet + ".tmp", parquet)
    record = PartRecord(row, ratings, int(seen_users.sum()), np.packbits(seen_items).tobytes())
    done = {"ratings": record.ratings, "users": record.users, "items": base64.b64encode(record.items).decode()}
    _write_bytes(fs, f"{root}/{DONE}/{name}.json", json.dumps(done).encode())
    return record


def read_record(fs: pafs.FileSystem, root: str, row: int) -> PartRecord | None:
    """The record of a completed part, or None when the part is missing or unfinished."""
    path = f"{root}/{DONE}/{part_name(row)}.json"
    if not _exists(fs, path):
        return None
    with fs.open_input_stream(path) as handle:
        done = json.loads(handle.read())
    return PartRecord(row, done["ratings"], done["users"], base64.b64decode(done["items"]))


def reset_if_stale(plan: Plan, source: object) -> None:
    """Create the output folder, emptying it first when it holds another expansion."""
    fs, root = _filesystem(plan.out)
    key = plan.key(source)
    key_path = f"{root}/{KEY}"
    if _exists(fs, key_path):
        with fs.open_input_stream(key_path) as handle:
            if json.loads(handle.read()) != key:
                fs.delete_dir_contents(root)
    fs.create_dir(root, recursive=True)
    _write_bytes(fs, key_path, json.dumps(key).encode())


def pending(plan: Plan, csv: bool) -> list[int]:
    """The block rows whose record, Parquet part or (when `csv`) CSV part is missing."""
    fs, root = _filesystem(plan.out)
    wanted = [PARQUET_DIR + "/{}.parquet"] + ([CSV_PARTS + "/{}.csv"] if csv else [])
    return [
        row for row in range(plan.spec.rows)
        if read_record(fs, root, row) is None
        or not all(_exists(fs, f"{root}/" + path.format(part_name(row))) for path in wanted)
    ]


def finish(plan: Plan, seconds: float) -> Manifest:
    """Gather the part records into the manifest; assemble the one-file CSV on a local disk."""
    fs, root = _filesystem(plan.out)
    records = [read_record(fs, root, row) for row in range(plan.spec.rows)]
    missing = [row for row, record in enumerate(records) if record is None]
    if missing:
        raise RuntimeError(f"{plan.spec.name}: block rows {missing} were not written")
    done = [r for r in records if r is not None]
    items = np.zeros(plan.spec.cols * plan.base.n_items, dtype=bool)
    for record in done:
        items |= np.unpackbits(np.frombuffer(record.items, dtype=np.uint8), count=len(items)).astype(bool)
    csv = None
    if plan.csv:
        csv = _assemble_csv(root) if isinstance(fs, pafs.LocalFileSystem) else f"{root}/{CSV_PARTS}"
    manifest = Manifest(
        plan.spec.name, plan.spec.rows, plan.spec.cols, plan.spec.seed, plan.base.nnz, plan.base.n_users,
        plan.base.n_items, sum(r.ratings for r in done), sum(r.users for r in done), int(items.sum()),
        expected_ratings(plan.base, plan.keep), f"{root}/{PARQUET_DIR}", csv, round(seconds, 3), plan.keep.tolist(),
    )
    _write_bytes(fs, f"{root}/{MANIFEST}", json.dumps(asdict(manifest), indent=1).encode())
    if csv is not None and isinstance(fs, pafs.LocalFileSystem):
        shutil.rmtree(Path(root) / CSV_PARTS, ignore_errors=True)
    return manifest


def _assemble_csv(root: str) -> str:
    """Concatenate the headerless CSV parts, in block-row order, into one file (what local readers take)."""
    parts = sorted((Path(root) / CSV_PARTS).glob("part-*.csv"))
    target = Path(root) / CSV_FILE
    if not parts and target.exists():
        return str(target)  # assembled by an earlier run that stopped before its manifest
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 24)
    tmp.replace(target)
    return str(target)


def read_manifest(out: str) -> Manifest | None:
    """The manifest of a finished expansion in `out`, or None."""
    fs, root = _filesystem(out)
    if not _exists(fs, f"{root}/{MANIFEST}"):
        return None
    with fs.open_input_stream(f"{root}/{MANIFEST}") as handle:
        return Manifest(**json.loads(handle.read()))


class NotEnoughDiskError(ValueError):
    """An expansion that would not fit the free disk, refused before any of it is written."""


PARQUET_BYTES_A_RATING = 4  # at most: 3.0 measured, 3.5 GB for fractal:synthetic:ml-20m:16x32's 1.16B ratings


def csv_line_bytes(plan: Plan) -> int:
    """The longest CSV line the expansion can write: its largest ids, and the longest of its base's
    ratings as pyarrow's writer formats them."""
    values = pa.table({"rating": pa.array(np.unique(plan.base.ratings), pa.float32())})
    text = io.BytesIO()
    pacsv.write_csv(values, text, pacsv.WriteOptions(include_header=False))
    longest = max((len(line) for line in text.getvalue().split(b"\n")), default=0)
    ids = len(str(plan.spec.rows * plan.base.n_users)) + len(str(plan.spec.cols * plan.base.n_items))
    return ids + longest + 3  # two commas and the newline


def disk_needed(plan: Plan, rows: list[int], csv: bool) -> int:
    """Bytes at most that writing these block rows takes: their Parquet parts and, with `csv`, twice the
    whole CSV (its parts, then the one file `finish` copies them into)."""
    expected = plan.keep.sum(axis=1) * plan.base.nnz  # each block row's expected ratings
    need = float(expected[rows].sum()) * PARQUET_BYTES_A_RATING
    return int(need + (2 * float(expected.sum()) * csv_line_bytes(plan) if csv else 0))


def check_disk(plan: Plan, rows: list[int], csv: bool) -> None:
    """A NotEnoughDiskError, naming the folder and both figures, where a local output lacks the room."""
    fs, root = _filesystem(plan.out)
    if not isinstance(fs, pafs.LocalFileSystem):
        return  # an object store: no free space to read
    folder = Path(root)
    while not folder.exists():
        folder = folder.parent
    need, free = disk_needed(plan, rows, csv), shutil.disk_usage(folder).free
    if need > free:
        what = "Parquet and the study's CSV" if csv else "Parquet"
        raise NotEnoughDiskError(
            f"{plan.spec.name} needs up to {_size(need)} of disk in {root} ({what}), and {folder} has "
            f"{_size(free)} free: free some, or point --cache-dir (RECOMMENDER_CACHE_DIR) at a larger disk")


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 10**8 else f"{n_bytes / 1e6:.1f} MB"


def write_expansion(plan: Plan, source: object, write_rows: Callable[[Plan, list[int]], None]) -> Manifest:
    """Write the parts still missing with `write_rows` (a local loop or Spark tasks), then the manifest.

    Parts already written are kept; a finished expansion with nothing missing is returned as it is. One
    that would not fit the free disk is refused first (`check_disk`).
    Once the one-file CSV is assembled, missing Parquet parts are rewritten without CSV parts.
    """
    started = time.perf_counter()
    reset_if_stale(plan, source)
    manifest = read_manifest(plan.out)
    has_csv = manifest is not None and manifest.csv is not None
    todo = pending(plan, csv=plan.csv and not has_csv)
    if manifest is not None and not todo and (has_csv or not plan.csv):
        return manifest
    check_disk(plan, todo, plan.csv and not has_csv)
    write_rows(replace(plan, csv=plan.csv and not has_csv), todo)
    return finish(plan, time.perf_counter() - started)


def write_rows_here(plan: Plan, rows: list[int]) -> None:
    """The local writer: one block row after another in this process."""
    for row in rows:
        write_part(plan, row)
