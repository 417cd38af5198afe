"""The torch engine's training ratings read from a Parquet table a batch at a time, never whole: at a billion
ratings the three columns alone would be 12 GB, the two grouped sides 10.

The load phase reads the table once (`load`): it checks each batch as the whole-table reader does, splits it
(the hashed holdout, or the whole table where a test file is the holdout), marks each side's ids and finds
whether the ratings fit one-byte codes (`als.Ratings`). The fit then groups them (`Streamed.sides`) in two
more reads: each side's CSR row counts (users or items, in `als.gram_blocks` column blocks), then a scatter
of each batch's columns and codes into arrays allocated once at their final size. So the peak is the two
sides (5 bytes a rating each where the ratings are codes), their int32 row pointers and one batch; the
memory each read frees is handed back to the system after it (`memory.hand_back_freed`), or the
allocators would keep it through the fit (6 GB at a billion ratings). The sides equal `als.make_side`'s:
each CSR row holds its ratings in the table's order. Ids index by a table over their range, which the
footers' statistics bound; a table without them, or with ids past MAX_TABLE_ID, is read whole instead.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import torch

from recommender import memory
from recommender.data import parquet
from recommender.data.columns import COLUMNS, ITEM, USER
from recommender.data.formats import BadInputError
from recommender.split import holdout_hash, threshold
from recommender.tensor import als

BATCH_ROWS = 1 << 22  # ratings a batch: its int64 copies and sort stay within a few hundred MB
# Batches Arrow decodes ahead of the one in use, from one file at a time. Its defaults (16 batches, 4 files)
# held 1.5 GB of decoded columns and were no faster: 132M ratings decoded in 1.9 s, 1.5 s with none ahead.
READAHEAD_BATCHES = 0
MAX_TABLE_ID = 1 << 27  # the largest id a side's lookup table covers (512 MB of int32 at most)


@dataclass(frozen=True)
class Source:
    """A Parquet table this module can stream: its dataset, and each side's id range from the footers."""

    uri: str
    dataset: pads.Dataset
    max_user: int
    max_item: int


def streamable(uri: str) -> Source | None:
    """The table at `uri` if it is local or pyarrow reaches it and every row group's footer bounds its
    ids within MAX_TABLE_ID; else None (it is then read whole). A damaged table: a BadInputError."""
    found = parquet.filesystem(uri)
    if found is None or not uri.rstrip("/").endswith(".parquet"):
        return None
    dataset = parquet.open_ratings(uri, *found)
    bounds = {USER: -1, ITEM: -1}
    try:
        for fragment in dataset.get_fragments():
            metadata = fragment.metadata
            names = metadata.schema.names
            for group in range(metadata.num_row_groups):
                row_group = metadata.row_group(group)
                for name in bounds:
                    statistics = row_group.column(names.index(name)).statistics
                    if statistics is None or not statistics.has_min_max:
                        return None
                    bounds[name] = max(bounds[name], int(statistics.max))
    except (pa.ArrowInvalid, OSError, ValueError) as error:
        raise BadInputError(uri, parquet.not_a_table(error)) from None
    if max(bounds.values()) > MAX_TABLE_ID:
        return None
    return Source(uri, dataset, bounds[USER], bounds[ITEM])


@dataclass(frozen=True)
class Split:
    """Which rows of the table are training: all of them, or those whose hash is not held out."""

    fraction: float  # 0: every row trains
    seed: int

    def training(self, users: np.ndarray, items: np.ndarray) -> np.ndarray | None:
        """The batch's training mask, or None where every row trains."""
        if not self.fraction:
            return None
        return np.asarray(holdout_hash(users.astype(np.int64), items.astype(np.int64), self.seed)) >= threshold(
            self.fraction)


def _batches(source: Source, check: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(users, items, ratings) of each batch, in the table's order; `check`: each column under the
    whole-table reader's rules (`parquet.valid_ids`, `valid_ratings`), else a BadInputError."""
    try:
        for batch in source.dataset.to_batches(columns=list(COLUMNS), batch_size=BATCH_ROWS,
                                               batch_readahead=READAHEAD_BATCHES, fragment_readahead=1,
                                               fragment_scan_options=parquet.UNBUFFERED):
            columns = [batch.column(name) for name in COLUMNS]
            if check and not all(parquet.valid_ids(column).all() for column in columns[:2]):
                raise BadInputError(source.uri, parquet.IDS_PROBLEM)
            if check and not parquet.valid_ratings(columns[2]).all():
                raise BadInputError(source.uri, parquet.RATINGS_PROBLEM)
            users, items = (column.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
                            for column in columns[:2])
            yield users, items, columns[2].to_numpy(zero_copy_only=False).astype(np.float32)  # writable: torch's
    except (pa.ArrowInvalid, OSError) as error:
        raise BadInputError(source.uri, parquet.not_a_table(error)) from None


@dataclass(frozen=True)
class Read:
    """What the load phase's read found: every id seen, training's ids, the held-out rows and the step."""

    seen_users: np.ndarray  # bool over the user id range: in the table at all (holdout included)
    seen_items: np.ndarray
    user_index: np.ndarray  # int32 over the id range: each training user's compact index, -1 elsewhere
    item_index: np.ndarray
    n_train: int
    n_ratings: int
    step: float | None  # the ratings' code step (`als.Ratings`), None where they keep float32
    all_positive: bool  # every training rating > 0: a row's n+ is its n (`als.Side.positives`)
    held: tuple[np.ndarray, np.ndarray, np.ndarray]  # raw (users, items, ratings) of the hashed holdout


def read(source: Source, split: Split) -> Read:
    """The load phase's one pass over the table (module docstring)."""
    seen = np.zeros(source.max_user + 1, bool), np.zeros(source.max_item + 1, bool)
    trained = np.zeros(source.max_user + 1, bool), np.zeros(source.max_item + 1, bool)
    steps, held, n_train, n_ratings, all_positive = list(als.CODE_STEPS), [], 0, 0, True
    for users, items, ratings in _batches(source, check=True):
        seen[0][users], seen[1][items] = True, True
        n_ratings += len(ratings)
        training = split.training(users, items)
        if training is not None:
            held.append((users[~training], items[~training], ratings[~training]))
            users, items, ratings = users[training], items[training], ratings[training]
        trained[0][users], trained[1][items] = True, True
        n_train += len(ratings)
        values = torch.from_numpy(ratings)
        steps = [step for step in steps if als.fits(values, step)]
        all_positive = all_positive and als.all_positive(als.Ratings(values))
    memory.hand_back_freed()
    if n_ratings == 0:
        raise BadInputError(source.uri, "no ratings (the table is empty)")

    def index(present: np.ndarray) -> np.ndarray:
        return np.where(present, np.cumsum(present, dtype=np.int64) - 1, -1).astype(np.int32)

    parts = [np.concatenate([h[n] for h in held]) if held else np.empty(0, dtype) for n, dtype in
             enumerate((np.int32, np.int32, np.float32))]
    return Read(*seen, index(trained[0]), index(trained[1]), n_train, n_ratings, steps[0] if steps else None,
                all_positive, (parts[0], parts[1], parts[2]))


@dataclass(frozen=True)
class _Layout:
    """One side's CSR shape: its rows, columns and column blocks (as `als.make_side` lays them out)."""

    rows: int
    cols: int
    blocks: int

    def keys(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Each rating's CSR row: its column block's rows, then its own row (`als.make_side`'s keys); int32
        (half the int64 sort's traffic) where the side's block rows fit."""
        if self.blocks == 1:
            return rows
        wide = self.blocks * self.rows > torch.iinfo(torch.int32).max
        return ((cols.long() if wide else cols) // -(-self.cols // self.blocks)).mul_(self.rows).add_(rows)


def _slots(keys: torch.Tensor, free: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(order, slot): the batch's ratings in a stable order by key, and the CSR position each goes to,
    after those of the batches before (`free`, each key's next position, is advanced past them)."""
    ordered, order = torch.sort(keys, stable=True)
    distinct, counts = torch.unique_consecutive(ordered, return_counts=True)
    firsts = torch.cumsum(counts, 0).sub_(counts)
    within = torch.arange(len(keys)).sub_(torch.repeat_interleave(firsts, counts))
    slots = free.index_select(0, ordered).long().add_(within)
    free.index_add_(0, distinct, counts.to(free.dtype))
    return order, slots


@dataclass(frozen=True)
class Streamed:
    """The training ratings of a streamable table, read once (`read`) and grouped on demand (`sides`)."""

    source: Source
    split: Split
    found: Read

    @property
    def n_users(self) -> int:
        return int(self.found.user_index.max()) + 1

    @property
    def n_items(self) -> int:
        return int(self.found.item_index.max()) + 1

    def _training(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Each batch's training (compact user, compact item, rating), as tensors."""
        for users, items, ratings in _batches(self.source):
            training = self.split.training(users, items)
            if training is not None:
                users, items, ratings = users[training], items[training], ratings[training]
            yield (torch.from_numpy(self.found.user_index[users]), torch.from_numpy(self.found.item_index[items]),
                   torch.from_numpy(ratings))

    def sides(self, rank: int, device: torch.device) -> tuple[als.Side, als.Side]:
        """Both sides, by user and by item, in the column blocks `als.gram_blocks` picks for `rank` and
        `device`, built on the CPU in two reads of the table (module docstring) and moved to `device`."""
        started = time.perf_counter()
        n, n_users, n_items = self.found.n_train, self.n_users, self.n_items
        layouts = (_Layout(n_users, n_items, als.gram_blocks(n_users, n_items, n, rank, device)),
                   _Layout(n_items, n_users, als.gram_blocks(n_items, n_users, n, rank, device)))
        if n > torch.iinfo(torch.int32).max:
            raise BadInputError(self.source.uri, f"{n:,} training ratings: a side holds at most 2^31 - 1 "
                                                 "(its CSR row pointers are int32)")
        # int32 counts and slots, as the sides' row pointers: 4 bytes a CSR row each (800 MB at a billion).
        counts = [torch.zeros(layout.blocks * layout.rows, dtype=torch.int32) for layout in layouts]
        positives = [torch.zeros(layout.rows) for layout in layouts]  # n+, where a rating is <= 0
        for users, items, ratings in self._training():
            ones = torch.ones(len(ratings), dtype=torch.int32)
            for layout, tally, above, (rows, cols) in zip(layouts, counts, positives, ((users, items), (items, users)),
                                                          strict=True):
                # Added where the keys fall: a bincount's own array of blocks * rows (400 MB a batch at a
                # billion ratings) would cost more to zero and add than the batch's ratings.
                tally.index_add_(0, layout.keys(rows, cols), ones)
                if not self.found.all_positive:
                    above.index_add_(0, rows, (ratings > 0).float())
        memory.hand_back_freed()
        if any(int(tally.sum()) != n for tally in counts):
            raise BadInputError(self.source.uri, "the table changed while it was read")
        crows = [torch.zeros(len(tally) + 1, dtype=torch.int32) for tally in counts]
        for crow, tally in zip(crows, counts, strict=True):
            torch.cumsum(tally, 0, out=crow[1:])
        by_rows = [tally.view(layout.blocks, layout.rows).sum(0).float() for layout, tally in zip(layouts, counts,
                                                                                                 strict=True)]
        del counts, tally  # the row pointers hold them
        free = [crow[:-1].clone() for crow in crows]  # each CSR row's next free slot
        step = self.found.step
        stored = torch.int8 if step is not None else torch.float32
        columns = [torch.empty(n, dtype=torch.int32) for _ in layouts]
        codes = [torch.empty(n, dtype=stored) for _ in layouts]
        for users, items, ratings in self._training():
            encoded = ratings if step is None else als.codes(ratings, step)
            for layout, out, code, next_free, (rows, cols) in zip(
                    layouts, columns, codes, free, ((users, items), (items, users)), strict=True):
                order, slots = _slots(layout.keys(rows, cols), next_free)
                out.index_copy_(0, slots, cols.index_select(0, order))
                code.index_copy_(0, slots, encoded.index_select(0, order))
        del free
        memory.hand_back_freed()  # the batches' buffers, before the iterations' own temporaries
        built = []
        for layout, crow, by_row, above, out, code in zip(layouts, crows, by_rows, positives, columns, codes,
                                                           strict=True):
            side = als.Side(crow, out, als.Ratings(code, step), by_row, by_row if self.found.all_positive else above,
                            layout.cols, layout.blocks)
            built.append(side.to(device))
        print(f"grouped {n:,} ratings from {self.source.uri} in two reads: {time.perf_counter() - started:.1f} s",
              file=sys.stderr)
        return built[0], built[1]
