"""Turning a data name into ratings files ready for Spark, each conversion cached and reused.

A name is a MovieLens set (`ml-20m`), a synthetic preset (`synthetic:ml-20m` or
`synthetic:ml-20m:SEED`), a fractal expansion of another name (`fractal:ml-100k:16x32[:SEED]`),
an implicit-feedback view of another name (`positives:4:ml-20m`: its ratings >= 4, each as 1;
recommender/data/views.py), or the path of a ratings file in the study's format. MovieLens sets are
taken from the mirror folder when one is configured (extracted folder or zip), else from the
cache, else downloaded from GroupLens.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import zipfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd

from recommender.data.download import download
from recommender.data.fractal import (
    FRACTAL,
    Base,
    base_from_frame,
    check_id_range,
    expected_ratings,
    parse_fractal,
    probabilities,
)
from recommender.data.fractal_output import VERSION as FRACTAL_VERSION
from recommender.data.fractal_output import Plan, write_expansion, write_rows_here
from recommender.data.movielens import SETS, MovieLensSet, check_counts, get_set, split_frame
from recommender.data.readers import read_ratings, write_parquet, write_study_csv
from recommender.data.synthetic import generate, preset
from recommender.data.views import POSITIVES, is_view, parse_positives, source_fingerprint, write_view
from recommender.data.views import VERSION as VIEW_VERSION

DATA_DIR_ENV = "RECOMMENDER_DATA_DIR"
CACHE_DIR_ENV = "RECOMMENDER_CACHE_DIR"
SYNTHETIC = "synthetic:"
PREP_VERSION = 1  # bump when the prepared files' content would change


@dataclass(frozen=True)
class Prepared:
    """A data set in the study's CSV format and in Parquet, with its counts. A fractal expansion has no
    CSV unless asked for (`prepare(..., text=True)`): 1.2 billion lines of text are over 20 GB."""

    name: str
    csv: str | None
    parquet: str | None
    ratings: int | None
    users: int | None
    items: int | None
    source: str
    oracle_mse: float | None = None  # synthetic data only: the noise floor
    test_csv: str | None = None  # a predefined split's test ratings (`ml-100k:u1`), which replace the holdout
    test_parquet: str | None = None

    def input_for(self, reads_parquet: bool) -> str:
        """The file an engine reads: the Parquet conversion where it reads Parquet and one exists."""
        if reads_parquet and self.parquet:
            return self.parquet
        if self.csv is None:
            raise ValueError(f"{self.name} was prepared as Parquet only: prepare it with its CSV (text=True)")
        return self.csv

    def test_for(self, reads_parquet: bool) -> str | None:
        """The predefined test file an engine reads, if the data set has one."""
        return self.test_parquet if reads_parquet and self.test_parquet else self.test_csv


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env) if env else Path.home() / ".cache" / "als-benchmark"


def default_data_dir() -> Path | None:
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else None


def prepare(name: str, data_dir: Path | None = None, cache_dir: Path | None = None, text: bool = True) -> Prepared:
    """The ratings files for `name`, converted (or generated) once and cached. `text`: whether the study's
    CSV is wanted besides the Parquet (only a fractal expansion makes it on demand; every other set has it)."""
    data_dir = data_dir if data_dir is not None else default_data_dir()
    cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
    if is_view(name):
        return _prepare_positives(name, data_dir, cache_dir)
    if name.startswith(SYNTHETIC):
        return _prepare_synthetic(name, cache_dir)
    if name.startswith(FRACTAL):
        return _prepare_fractal(name, data_dir, cache_dir, text)
    if ":" in name and is_movielens_name(name.partition(":")[0]):
        base, _, split = name.partition(":")
        return _prepare_movielens_split(get_set(base), split, data_dir, cache_dir)
    if is_movielens_name(name):
        return _prepare_movielens(get_set(name), data_dir, cache_dir)
    path = Path(name)
    return Prepared(name, str(path), None, None, None, None, source=str(path))


def is_movielens_name(name: str) -> bool:
    """A registered set, or an `ml-` name that is no existing file (then a typo the registry names)."""
    return name in SETS or (name.startswith("ml-") and not Path(name).exists())


def validated_conversion(name: str) -> bool:
    """Whether `prepare(name)` makes the ratings file itself (a MovieLens conversion or split, a synthetic
    or fractal set): every line of it, repeated (user, item) pairs included, was checked when it was made
    and its outputs are fingerprinted, so a run may skip the per-load repeated-pair pass (`--unique-pairs`).
    A user's own file is not: it keeps the full check on every load. A view (`positives:4:ml-20m`) is
    made by this suite from its base's prepared files, so it is one where its base is."""
    if is_view(name):
        return validated_conversion(parse_positives(name).base)
    return name.startswith((SYNTHETIC, FRACTAL)) or is_movielens_name(name.partition(":")[0])


def stored_locally(name: str, data_dir: Path | None = None, cache_dir: Path | None = None) -> bool:
    """Whether MovieLens set `name` (or a view of it) can be prepared without a download (mirror or cache)."""
    if is_view(name):
        return stored_locally(parse_positives(name).base, data_dir, cache_dir)
    spec = get_set(name)
    data_dir = data_dir if data_dir is not None else default_data_dir()
    cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
    places = [cache_dir / "downloads" / f"{spec.name}.zip"]
    if data_dir is not None:
        places += [data_dir / f / spec.ratings_file for f in (spec.name, spec.folder)]
        places.append(data_dir / f"{spec.name}.zip")
    return any(place.exists() for place in places)


def locate_raw(spec: MovieLensSet, data_dir: Path | None, cache_dir: Path) -> Path:
    """The ratings file of `spec`: mirror folder, mirror zip, cached zip, or a fresh download."""
    if data_dir is not None:
        if not data_dir.is_dir():
            raise FileNotFoundError(f"MovieLens mirror folder {data_dir} does not exist")
        for folder in dict.fromkeys((spec.name, spec.folder)):
            candidate = data_dir / folder / spec.ratings_file
            if candidate.is_file():
                return candidate
        if (data_dir / f"{spec.name}.zip").is_file():
            return _extract(data_dir / f"{spec.name}.zip", spec, cache_dir)
    cached_zip = cache_dir / "downloads" / f"{spec.name}.zip"
    if not cached_zip.exists():
        if data_dir is not None:
            print(f"{spec.name} is not in the mirror {data_dir}; downloading {spec.url}")
        download(spec.url, cached_zip, spec.md5_url)
    return _extract(cached_zip, spec, cache_dir)


def _extract(archive: Path, spec: MovieLensSet, cache_dir: Path) -> Path:
    """Extract the ratings member of `archive` into the cache (atomically) and return its path."""
    dest = cache_dir / "raw" / spec.name / spec.ratings_file
    if dest.exists() and dest.stat().st_mtime >= archive.stat().st_mtime:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        with zipfile.ZipFile(archive) as zf, zf.open(spec.member) as src, tmp.open("wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    except KeyError:
        raise ValueError(f"{archive} has no {spec.member}: not the {spec.name} zip") from None
    except zipfile.BadZipFile as error:
        raise ValueError(f"{archive} is not a valid zip: {error}") from None
    tmp.replace(dest)
    return dest


def _fingerprint(path: Path) -> dict[str, object]:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _outputs(prepared: Prepared) -> list[dict[str, object]]:
    """Fingerprints of the prepared files, so that a truncated or rewritten one is never reused."""
    return [_fingerprint(Path(f)) for f in (prepared.csv, prepared.parquet) if f is not None]


def _cached(folder: Path, key: dict[str, object]) -> Prepared | None:
    """The prepared files recorded in `folder`, if made from `key` and untouched since; else None."""
    meta = folder / "meta.json"
    try:
        stored = json.loads(meta.read_text())
        if stored.get("key") != key:
            return None
        prepared = Prepared(**stored["prepared"])
        return prepared if stored.get("outputs") == _outputs(prepared) else None
    except (OSError, ValueError, TypeError, KeyError):  # missing, damaged or from another version: rebuild
        return None


def _store(folder: Path, key: dict[str, object], prepared: Prepared) -> Prepared:
    meta = folder / "meta.json"
    tmp = meta.with_name("meta.json.tmp")
    record = {"key": key, "prepared": asdict(prepared), "outputs": _outputs(prepared)}
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(meta)
    return prepared


def _prepare_movielens(spec: MovieLensSet, data_dir: Path | None, cache_dir: Path) -> Prepared:
    raw = locate_raw(spec, data_dir, cache_dir)
    folder = cache_dir / "prepared" / spec.name
    key = {"version": PREP_VERSION, "source": _fingerprint(raw)}
    hit = _cached(folder, key)
    if hit is not None:
        return hit
    started = time.perf_counter()
    frame = read_ratings(raw, spec.fmt).frame
    check_counts(spec, frame, str(raw))
    folder.mkdir(parents=True, exist_ok=True)
    csv, parquet = folder / "ratings.csv", folder / "ratings.parquet"
    write_study_csv(frame, csv)
    write_parquet(frame, parquet)
    print(f"prepared {spec.name} from {raw} in {time.perf_counter() - started:.1f} s")
    prepared = Prepared(
        spec.name, str(csv), str(parquet), spec.ratings, spec.users, spec.movies, source=str(raw)
    )
    return _store(folder, key, prepared)


def _prepare_movielens_split(spec: MovieLensSet, split: str, data_dir: Path | None, cache_dir: Path) -> Prepared:
    """A published split (`ml-100k:u1`), made from the ratings file by the set's own rules
    (movielens.split_frame); training and test files converted like the whole set."""
    raw = locate_raw(spec, data_dir, cache_dir)
    folder = cache_dir / "prepared" / f"{spec.name}-{split}"
    key = {"version": PREP_VERSION, "source": _fingerprint(raw), "split": split}
    hit = _cached(folder, key)
    if hit is not None:
        return hit
    frame = read_ratings(raw, spec.fmt).frame
    check_counts(spec, frame, str(raw))
    frames = split_frame(spec, split, frame.reset_index(drop=True))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for part, part_frame in zip(("train", "test"), frames, strict=True):
        csv, parquet = folder / f"{part}.csv", folder / f"{part}.parquet"
        write_study_csv(part_frame, csv)
        write_parquet(part_frame, parquet)
        paths += [str(csv), str(parquet)]
    train = frames[0]
    prepared = Prepared(f"{spec.name}:{split}", paths[0], paths[1], len(train), int(train["user"].nunique()),
                        int(train["item"].nunique()), source=str(raw), test_csv=paths[2], test_parquet=paths[3])
    return _store(folder, key, prepared)


def rating_scale(name: str) -> tuple[float, float] | None:
    """The (lowest, highest) rating of data set `name` where it has a published scale: MovieLens
    sets, their splits and the synthetic presets; None for files, fractal expansions and views."""
    if is_view(name):
        # Every rating of a view is 1: its scale [1, 1] would clip every prediction to 1 (a zero test
        # error for any model), and an implicit model predicts preferences, not ratings: nothing to clip to.
        return None
    if name.startswith(SYNTHETIC):
        return preset(parse_synthetic(name)[0]).scale[:2]
    if name.startswith("ml-"):
        return get_set(name.partition(":")[0]).rating_range
    return None


def parse_synthetic(name: str) -> tuple[str, int]:
    """(preset, seed) of `synthetic:PRESET[:SEED]`."""
    parts = name[len(SYNTHETIC) :].split(":")
    if len(parts) > 2 or not parts[0]:
        raise ValueError(f"{name!r}: expected synthetic:PRESET or synthetic:PRESET:SEED")
    if len(parts) == 2 and not parts[1].isdigit():
        raise ValueError(f"{name!r}: the seed {parts[1]!r} is not a non-negative integer")
    return parts[0], int(parts[1]) if len(parts) == 2 else 0


def _prepare_synthetic(name: str, cache_dir: Path) -> Prepared:
    preset_name, seed = parse_synthetic(name)
    spec = preset(preset_name, seed)
    folder = cache_dir / "synthetic" / f"{preset_name}-seed{seed}"
    key = {"version": PREP_VERSION, "spec": asdict(spec)}
    hit = _cached(folder, key)
    if hit is not None:
        return hit
    started = time.perf_counter()
    data = generate(spec)
    folder.mkdir(parents=True, exist_ok=True)
    csv, parquet = folder / "ratings.csv", folder / "ratings.parquet"
    write_study_csv(data.frame, csv)
    write_parquet(data.frame, parquet)
    print(f"generated {name} in {time.perf_counter() - started:.1f} s")
    prepared = Prepared(
        name, str(csv), str(parquet), spec.ratings, spec.users, spec.items,
        source=f"generator {asdict(spec)}", oracle_mse=data.oracle_mse,
    )
    return _store(folder, key, prepared)


def fractal_base(name: str, data_dir: Path | None, cache_dir: Path | None) -> tuple[Base, dict[str, object]]:
    """The base matrix of an expansion (any data name, prepared as usual) and its file's fingerprint."""
    prepared = prepare(name, data_dir, cache_dir)
    if prepared.parquet is not None:
        frame = pd.read_parquet(prepared.parquet)
        return base_from_frame(frame), _fingerprint(Path(prepared.parquet))
    text = prepared.input_for(reads_parquet=False)
    return base_from_frame(read_ratings(text).frame), _fingerprint(Path(text))


def expected_fractal_ratings(name: str, data_dir: Path | None = None, cache_dir: Path | None = None) -> int:
    """The expected size of expansion `name` (its base and SVD only, no expansion): for planning and budgets."""
    spec = parse_fractal(name)
    base, _ = fractal_base(spec.base, data_dir, cache_dir)
    return round(expected_ratings(base, probabilities(base, spec.rows, spec.cols)))


def _prepare_fractal(name: str, data_dir: Path | None, cache_dir: Path, text: bool) -> Prepared:
    """Expand the base in this process (no Spark needed), as Parquet, and the study's CSV where `text` asks
    for it (for an engine that reads text), resumably: a Parquet-only expansion gains its CSV when asked.
    On a cluster, recommender/spark/fractal.py writes the same parts with one Spark task per block row.
    """
    spec = parse_fractal(name)
    base, source = fractal_base(spec.base, data_dir, cache_dir)
    folder = cache_dir / "fractal" / re.sub(r"[^A-Za-z0-9._-]+", "_", spec.name[len(FRACTAL) :])
    key = {"version": PREP_VERSION, "generator": FRACTAL_VERSION, "spec": spec.name, "source": source}
    hit = _cached(folder, key)
    if hit is not None and (hit.csv is not None or not text):
        return replace(hit, name=name)  # the name as given: with or without its default seed
    check_id_range(spec, base)
    started = time.perf_counter()
    plan = Plan(spec, base, probabilities(base, spec.rows, spec.cols), str(folder), csv=text)
    manifest = write_expansion(plan, source, write_rows_here)
    print(f"generated {spec.name}: {manifest.ratings:,} ratings in {time.perf_counter() - started:.1f} s")
    prepared = Prepared(
        name, manifest.csv, manifest.parquet, manifest.ratings, manifest.users, manifest.items,
        source=f"fractal expansion of {source['path']}",
    )
    return _store(folder, key, prepared)


def _prepare_positives(name: str, data_dir: Path | None, cache_dir: Path) -> Prepared:
    """The base prepared as usual, then its ratings >= R (and its split's test ratings >= R) written as 1,
    streamed (views.write_view); once per base and R, rebuilt when the base's files change."""
    spec = parse_positives(name)
    base = prepare(spec.base, data_dir, cache_dir)
    test = base.test_for(reads_parquet=True)
    sources = [base.input_for(reads_parquet=True)] + ([test] if test is not None else [])
    folder = cache_dir / "positives" / re.sub(r"[^A-Za-z0-9._-]+", "_", spec.name[len(POSITIVES) :])
    key = {"version": PREP_VERSION, "view": VIEW_VERSION, "threshold": spec.threshold,
           "sources": [source_fingerprint(path) for path in sources]}
    hit = _cached(folder, key)
    if hit is not None:
        return replace(hit, name=name)  # the name as given: `positives:4:…` and `positives:4.0:…` share it
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[str] = []
    counts = []
    for part, source in zip(("train", "test"), sources, strict=False):
        csv, parquet = folder / f"{part}.csv", folder / f"{part}.parquet"
        counts.append(write_view(source, spec.threshold, csv, parquet))
        paths += [str(csv), str(parquet)]
    print(f"prepared {spec.name}: {counts[0].ratings:,} of {spec.base}'s ratings "
          f"in {time.perf_counter() - started:.1f} s")
    test_csv, test_parquet = (paths[2], paths[3]) if len(paths) == 4 else (None, None)
    prepared = Prepared(
        name, paths[0], paths[1], counts[0].ratings, counts[0].users, counts[0].items,
        source=f"ratings >= {spec.threshold_text} of {base.source}", test_csv=test_csv, test_parquet=test_parquet,
    )
    return _store(folder, key, prepared)
