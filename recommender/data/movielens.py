"""The MovieLens data sets: where GroupLens publishes each one, its ratings file, and its counts.

Counts are those of the ratings file (ALS sees only rated movies): the number of ratings and of
users as GroupLens' READMEs publish them, and the number of distinct rated movies, which is
smaller than the catalogue count in the README for every set but ml-100k. After parsing, all
three are checked, so a truncated or wrong file is an error rather than a smaller data set.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from recommender.data.columns import RATING
from recommender.data.formats import ML_100K_TSV, ML_CSV, ML_DAT, RatingsFormat
from recommender.data.scale import Scale, check_published

BASE_URL = "https://files.grouplens.org/datasets/movielens"


@dataclass(frozen=True)
class MovieLensSet:
    """One published MovieLens data set."""

    name: str
    folder: str  # the folder inside the zip
    ratings_file: str
    fmt: RatingsFormat
    ratings: int
    users: int
    movies: int  # distinct rated movies in the ratings file
    half_stars: bool  # 0.5 .. 5 in half steps; otherwise whole stars 1 .. 5

    @property
    def url(self) -> str:
        return f"{BASE_URL}/{self.name}.zip"

    @property
    def md5_url(self) -> str:
        """GroupLens publishes an MD5 sum beside each zip."""
        return f"{self.url}.md5"

    @property
    def member(self) -> str:
        """The ratings file's path inside the zip."""
        return f"{self.folder}/{self.ratings_file}"

    @property
    def scale(self) -> Scale:
        """GroupLens' published scale: 0.5 to 5 in half stars, or 1 to 5 in whole stars."""
        return Scale(0.5, 5.0, 0.5) if self.half_stars else Scale(1.0, 5.0, 1.0)

    @property
    def rating_range(self) -> tuple[float, float]:
        return self.scale.low, self.scale.high


SETS: dict[str, MovieLensSet] = {
    s.name: s
    for s in (
        MovieLensSet("ml-100k", "ml-100k", "u.data", ML_100K_TSV, 100_000, 943, 1_682, False),
        MovieLensSet("ml-1m", "ml-1m", "ratings.dat", ML_DAT, 1_000_209, 6_040, 3_706, False),
        MovieLensSet("ml-10m", "ml-10M100K", "ratings.dat", ML_DAT, 10_000_054, 69_878, 10_677, True),
        MovieLensSet("ml-20m", "ml-20m", "ratings.csv", ML_CSV, 20_000_263, 138_493, 26_744, True),
        MovieLensSet("ml-25m", "ml-25m", "ratings.csv", ML_CSV, 25_000_095, 162_541, 59_047, True),
        MovieLensSet("ml-32m", "ml-32m", "ratings.csv", ML_CSV, 32_000_204, 200_948, 84_432, True),
        MovieLensSet(
            "ml-latest-small", "ml-latest-small", "ratings.csv", ML_CSV, 100_836, 610, 9_724, True
        ),
    )
}


# Published train/test splits. ml-100k's u1..u5 (five disjoint 20% test sets, for 5-fold
# cross-validation) and ua/ub (10 ratings of every user in the test set) are made from u.data by
# the set's own mku.sh; `split_frame` applies the same rules to u.data, so no other file is needed.
SPLITS: dict[str, tuple[str, ...]] = {"ml-100k": ("u1", "u2", "u3", "u4", "u5", "ua", "ub")}
FOLD = 20_000  # mku.sh: u<i>.test is lines (i-1)*20000+1 .. i*20000 of u.data
PER_USER = {"ua": (1, 10), "ub": (11, 20)}  # mku.sh's allbut.pl: each user's n-th ratings, n in range


def split_frame(spec: MovieLensSet, split: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training, test) ratings of a published split, from the ratings file's rows in file order."""
    known = SPLITS.get(spec.name, ())
    if split not in known:
        offered = f"its splits are {', '.join(known)}" if known else "it publishes no splits"
        raise ValueError(f"{spec.name}:{split}: unknown split; {offered}")
    if split in PER_USER:
        first, last = PER_USER[split]
        nth = frame.groupby("user").cumcount() + 1
        test = nth.between(first, last).to_numpy()
    else:
        fold = int(split[1:]) - 1
        test = (frame.index >= fold * FOLD) & (frame.index < (fold + 1) * FOLD)
    return frame[~test], frame[test]


def get_set(name: str) -> MovieLensSet:
    """The registry entry for `name`, or an error listing the known names."""
    try:
        return SETS[name]
    except KeyError:
        known = ", ".join(SETS)
        raise ValueError(f"unknown MovieLens data set {name!r}; known: {known}") from None


def check_counts(spec: MovieLensSet, frame: pd.DataFrame, source: str) -> None:
    """Raise if the parsed ratings (the file's rows in order) do not have the published rating scale,
    naming the first line off it, or the published counts."""
    check_published(spec.scale, frame[RATING].to_numpy(), source, 2 if spec.fmt.header else 1, spec.name)
    found = {
        "ratings": len(frame),
        "users": int(frame["user"].nunique()),
        "movies": int(frame["item"].nunique()),
    }
    expected = {"ratings": spec.ratings, "users": spec.users, "movies": spec.movies}
    wrong = [f"{k}: expected {expected[k]:,}, found {found[k]:,}" for k in expected if found[k] != expected[k]]
    if wrong:
        raise ValueError(
            f"{source} does not match the published {spec.name} ({'; '.join(wrong)}); "
            "the file is truncated, altered or not that data set"
        )
