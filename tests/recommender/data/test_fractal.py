"""Fractal expansion: the spec, the reduction, the blocks' statistics, determinism, and the resumable writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from recommender.data import fractal_output as out
from recommender.data.fractal import (
    P_MIN,
    Base,
    FractalSpec,
    base_from_frame,
    bernoulli_indices,
    check_id_range,
    expand_block,
    expected_ratings,
    interactions,
    parse_fractal,
    probabilities,
    reduce_matrix,
)
from recommender.data.movielens import SETS
from recommender.data.readers import read_ratings
from recommender.data.sources import expected_fractal_ratings, prepare

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def ml100k(movielens_dir: Path) -> Base:
    return base_from_frame(read_ratings(movielens_dir / "ml-100k" / "u.data", SETS["ml-100k"].fmt).frame)


def tiny_base(seed: int = 1, users: int = 7, items: int = 5, density: float = 0.5) -> Base:
    rng = np.random.default_rng(seed)
    mask = rng.random((users, items)) < density
    mask[np.arange(users), rng.integers(0, items, users)] = True  # every user rates something
    mask[rng.integers(0, users, items), np.arange(items)] = True  # every item is rated
    u, i = np.nonzero(mask)
    ratings = rng.integers(1, 6, len(u)).astype(np.float32)
    return base_from_frame(pd.DataFrame({"user": u + 10, "item": i * 3, "rating": ratings}))


def expansion(base: Base, keep: np.ndarray, seed: int = 0) -> np.ndarray:
    """The whole expansion as a dense matrix of ratings (0 where none)."""
    rows, cols = keep.shape
    dense = np.zeros((rows * base.n_users, cols * base.n_items))
    for a in range(rows):
        for b in range(cols):
            users, items, ratings = expand_block(base, keep, seed, a, b)
            assert not dense[users, items].any()  # no pair twice
            dense[users, items] = ratings
    return dense


def singular_values(matrix: np.ndarray) -> np.ndarray:
    s = np.linalg.svd(matrix, compute_uv=False)
    return np.sort(s[s > 1e-9])[::-1]


def test_spec_parsing() -> None:
    assert parse_fractal("fractal:ml-100k:16x32") == FractalSpec("ml-100k", 16, 32, 0)
    assert parse_fractal("fractal:ml-20m:4x8:7") == FractalSpec("ml-20m", 4, 8, 7)
    assert parse_fractal("fractal:synthetic:ml-1m:3:2x2") == FractalSpec("synthetic:ml-1m:3", 2, 2, 0)
    assert parse_fractal("fractal:s3://b/r.parquet:2x3:5") == FractalSpec("s3://b/r.parquet", 2, 3, 5)
    assert parse_fractal("fractal:ml-100k:4x8:7").name == "fractal:ml-100k:4x8:7"
    for bad in ("fractal:ml-100k", "fractal:ml-100k:0x4", "fractal:ml-100k:4x", "fractal::4x4", "fractal:4x4:1",
                "fractal:ml-100k:4by4", "ml-100k:4x4"):
        with pytest.raises(ValueError, match="expected fractal:BASE:RxC"):
            parse_fractal(bad)


def test_ids_must_stay_32_bit() -> None:
    base = tiny_base()
    check_id_range(FractalSpec("x", 4, 4), base)
    with pytest.raises(ValueError, match="exceed 32-bit ids"):
        check_id_range(FractalSpec("x", 2**31 // base.n_users + 1, 1), base)


def test_base_is_indexed_densely_in_id_order() -> None:
    base = base_from_frame(pd.DataFrame({"user": [5, 9, 5], "item": [30, 10, 10], "rating": [1.0, 2.0, 3.0]}))
    assert (base.n_users, base.n_items) == (2, 2)
    assert base.users.tolist() == [0, 1, 0] and base.items.tolist() == [1, 0, 0]


def test_zero_one_keep_matrix_gives_the_products_of_the_two_spectra() -> None:
    base = tiny_base()
    keep = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    expected = np.sort(np.outer(singular_values(keep), singular_values(base_dense(base))).ravel())[::-1]
    got = singular_values(expansion(base, keep))
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_all_ones_keeps_every_rating_of_every_block_with_its_value() -> None:
    base = tiny_base(users=6, items=4)
    keep = np.ones((2, 3))
    dense = expansion(base, keep, seed=5)
    assert np.count_nonzero(dense) == 6 * base.nnz
    scale = np.sqrt(6)  # the one singular value of a 2 x 3 matrix of ones
    np.testing.assert_allclose(singular_values(dense), scale * singular_values(base_dense(base)), rtol=1e-9)
    for a in range(2):
        for b in range(3):
            block = dense[a * 6 : (a + 1) * 6, b * 4 : (b + 1) * 4]
            assert sorted(block[block > 0]) == sorted(base.ratings)


def base_dense(base: Base) -> np.ndarray:
    dense = np.zeros((base.n_users, base.n_items))
    dense[base.users, base.items] = base.ratings
    return dense


def test_reduced_matrix_keeps_the_top_singular_values(ml100k: Base) -> None:
    top = np.linalg.svd(interactions(ml100k).toarray(), compute_uv=False)[:4]
    np.testing.assert_allclose(singular_values(reduce_matrix(ml100k, 4, 6)), top, rtol=1e-9)
    keep = probabilities(ml100k, 4, 6)
    assert keep.shape == (4, 6) and keep.max() == 1.0 and keep.min() >= P_MIN


def test_expected_count_within_one_percent_on_ml100k(ml100k: Base) -> None:
    keep = probabilities(ml100k, 16, 32)
    count = sum(len(expand_block(ml100k, keep, 3, a, b)[0]) for a in range(16) for b in range(32))
    expected = expected_ratings(ml100k, keep)
    assert expected > 1_000_000
    assert abs(count - expected) / expected < 0.01


@pytest.mark.parametrize("p", [0.02, 0.3, 0.97])
def test_geometric_gaps_keep_each_index_with_probability_p(p: float) -> None:
    rng = np.random.default_rng(4)
    n, draws = 40, 6000
    hits = np.zeros(n)
    for _ in range(draws):
        kept = bernoulli_indices(rng, n, p)
        assert np.all(np.diff(kept) > 0) and (len(kept) == 0 or (kept[0] >= 0 and kept[-1] < n))
        hits[kept] += 1
    spread = 5 * np.sqrt(p * (1 - p) / draws)  # five standard errors of one position's frequency
    assert np.all(np.abs(hits / draws - p) < spread)
    assert len(bernoulli_indices(rng, n, 1.0)) == n and len(bernoulli_indices(rng, n, 0.0)) == 0


def test_blocks_are_deterministic_from_seed_and_position() -> None:
    base = tiny_base(users=40, items=30)
    keep = np.full((3, 3), 0.5)
    first = expand_block(base, keep, 9, 2, 1)
    for again, same in ((expand_block(base, keep, 9, 2, 1), True), (expand_block(base, keep, 10, 2, 1), False)):
        assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True)) is same
    users, items, _ = first
    assert users.min() >= 2 * 40 and users.max() < 3 * 40 and items.min() >= 30 and items.max() < 60


def write(tmp: Path, base: Base, csv: bool = True, name: str = "fractal:tiny:3x4:1") -> out.Manifest:
    spec = parse_fractal(name)
    plan = out.Plan(spec, base, np.full((spec.rows, spec.cols), 0.6), str(tmp), csv)
    return out.write_expansion(plan, {"path": "tiny"}, out.write_rows_here)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("part-*"))}


def test_writer_counts_and_formats(tmp_path: Path) -> None:
    base = tiny_base(users=50, items=40, density=0.3)
    manifest = write(tmp_path, base)
    table = pq.read_table(manifest.parquet).to_pandas()
    assert len(table) == manifest.ratings and len(list(Path(manifest.parquet).glob("part-*.parquet"))) == 3
    assert manifest.users == table["user"].nunique() and manifest.items == table["item"].nunique()
    assert table["user"].max() < 3 * 50 and table["item"].max() < 4 * 40
    csv = pd.read_csv(str(manifest.csv), header=None, names=["user", "item", "rating"])
    pd.testing.assert_frame_equal(csv.astype(table.dtypes.to_dict()), table)
    assert not (tmp_path / out.CSV_PARTS).exists()  # merged into the one file
    # Unique pairs, as `--unique-pairs` (sources.validated_conversion) takes on trust for a fractal set.
    assert not table.duplicated(["user", "item"]).any() and len(read_ratings(manifest.csv).frame) == len(table)


def test_resumes_a_deleted_or_unfinished_part_to_the_same_bytes(tmp_path: Path) -> None:
    base = tiny_base(users=50, items=40, density=0.3)
    first = write(tmp_path, base, csv=False)
    before = folder_bytes(tmp_path)
    stamp = (tmp_path / out.PARQUET_DIR / "part-00000.parquet").stat().st_mtime_ns
    (tmp_path / out.MANIFEST).unlink()
    (tmp_path / out.PARQUET_DIR / "part-00001.parquet").rename(tmp_path / out.PARQUET_DIR / "part-00001.parquet.tmp")
    (tmp_path / out.DONE / "part-00001.json").unlink()  # as if stopped while writing part 1
    (tmp_path / out.PARQUET_DIR / "part-00002.parquet").unlink()  # a block row deleted by hand
    again = write(tmp_path, base, csv=False)
    assert folder_bytes(tmp_path) == before and again.ratings == first.ratings
    assert (tmp_path / out.PARQUET_DIR / "part-00000.parquet").stat().st_mtime_ns == stamp  # kept, not rewritten


def test_a_part_deleted_after_the_csv_was_assembled_is_rewritten_alone(tmp_path: Path) -> None:
    base = tiny_base(users=50, items=40, density=0.3)
    first = write(tmp_path, base, csv=True)
    before, csv = folder_bytes(tmp_path), Path(str(first.csv)).read_bytes()
    stamp = (tmp_path / out.PARQUET_DIR / "part-00000.parquet").stat().st_mtime_ns
    (tmp_path / out.PARQUET_DIR / "part-00002.parquet").unlink()
    again = write(tmp_path, base, csv=True)
    assert folder_bytes(tmp_path) == before and Path(str(again.csv)).read_bytes() == csv
    assert (tmp_path / out.PARQUET_DIR / "part-00000.parquet").stat().st_mtime_ns == stamp
    assert not (tmp_path / out.CSV_PARTS).exists()


def test_another_expansion_in_the_folder_is_replaced(tmp_path: Path) -> None:
    base = tiny_base(users=50, items=40, density=0.3)
    write(tmp_path, base, csv=False, name="fractal:tiny:3x4:1")
    other = write(tmp_path, base, csv=False, name="fractal:tiny:2x4:2")
    parts = sorted((tmp_path / out.PARQUET_DIR).iterdir())
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet"]
    assert other.ratings == sum(pq.read_metadata(p).num_rows for p in parts)


def test_prepare_expands_the_mirror_once(movielens_dir: Path, tmp_path: Path) -> None:
    first = prepare("fractal:ml-100k:2x3:4", movielens_dir, tmp_path)
    assert first.parquet is not None and first.ratings is not None and Path(first.csv).is_file()
    assert 100_000 < first.ratings < 6 * 100_000 and first.users is not None and first.users <= 2 * 943
    assert pq.read_table(first.parquet).num_rows == first.ratings
    stamp = Path(first.csv).stat().st_mtime_ns
    assert prepare("fractal:ml-100k:2x3:4", movielens_dir, tmp_path) == first
    assert Path(first.csv).stat().st_mtime_ns == stamp
    assert prepare("fractal:ml-100k:2x3", movielens_dir, tmp_path).name == "fractal:ml-100k:2x3"
    expected = expected_fractal_ratings("fractal:ml-100k:2x3:4", movielens_dir, tmp_path)
    assert abs(first.ratings - expected) < 0.01 * expected


def test_an_expansion_for_parquet_readers_writes_no_text_until_one_asks(movielens_dir: Path, tmp_path: Path) -> None:
    parquet_only = prepare("fractal:ml-100k:2x2", movielens_dir, tmp_path, text=False)
    folder = Path(parquet_only.input_for(reads_parquet=True)).parent
    assert parquet_only.csv is None and not list(folder.rglob("*.csv"))
    with pytest.raises(ValueError, match="Parquet only"):
        parquet_only.input_for(reads_parquet=False)
    with_text = prepare("fractal:ml-100k:2x2", movielens_dir, tmp_path)  # an engine that reads text
    table = pq.read_table(parquet_only.input_for(reads_parquet=True)).to_pandas()
    assert with_text.ratings == parquet_only.ratings == len(read_ratings(with_text.input_for(False)).frame)
    assert len(table) == with_text.ratings
    assert prepare("fractal:ml-100k:2x2", movielens_dir, tmp_path, text=False) == with_text  # the CSV is kept


def test_the_disk_an_expansion_needs_bounds_what_it_writes(ml100k: Base, movielens_dir: Path, tmp_path: Path) -> None:
    """`disk_needed` is an upper bound, yet within 2x of the Parquet and CSV files (so no false refusal)."""
    prepared = prepare("fractal:ml-100k:2x2", movielens_dir, tmp_path)
    assert prepared.csv is not None
    spec, base = parse_fractal("fractal:ml-100k:2x2"), ml100k
    plan = out.Plan(spec, base, probabilities(base, spec.rows, spec.cols), str(tmp_path / "unused"), csv=True)
    parquet = sum(p.stat().st_size for p in Path(prepared.input_for(reads_parquet=True)).glob("*.parquet"))
    csv = Path(prepared.csv).stat().st_size
    assert parquet <= out.disk_needed(plan, list(range(spec.rows)), csv=False) <= 2 * parquet
    assert parquet + 2 * csv <= out.disk_needed(plan, list(range(spec.rows)), csv=True) <= 2 * (parquet + 2 * csv)
    assert out.disk_needed(plan, [0], csv=False) < out.disk_needed(plan, [0, 1], csv=False)


def test_an_expansion_that_would_not_fit_the_disk_is_refused_before_a_part_is_written(
        movielens_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(out.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 10**5})())
    with pytest.raises(out.NotEnoughDiskError, match=r"fractal:ml-100k:2x2:0 needs up to 0\.\d MB of disk in "
                                                      r".* \(Parquet\), and .* has 0\.1 MB free: .*--cache-dir"):
        prepare("fractal:ml-100k:2x2", movielens_dir, tmp_path, text=False)
    assert not list(tmp_path.rglob("part-*"))
