"""The prediction errors both PyTorch engines measure: of a side's training ratings and of a holdout, a chunk
of pairs at a time, so that neither the gathered factor rows, nor the predictions, nor a side's rows and
decoded ratings ever exist whole (at a billion ratings each would be 4 GB)."""

from __future__ import annotations

import torch

from recommender.tensor.als import Ratings, Side, targets

PREDICT_CHUNK = 1 << 18  # ratings predicted at a time: the gathered factor rows stay in cache


class SideRows:
    """The row index of each rating of a CSR side, in its order, sliced on demand (it is never built
    whole); a side in column blocks (`Side.blocks`) stacks its rows once per block."""

    def __init__(self, side: Side) -> None:
        self.crow = side.crow.long()
        self.rows = side.rows

    def __getitem__(self, at: slice) -> torch.Tensor:
        positions = torch.arange(at.start, min(at.stop, int(self.crow[-1])), device=self.crow.device)
        return (torch.searchsorted(self.crow, positions, right=True) - 1) % self.rows


def errors(users: torch.Tensor, items: torch.Tensor, rows: torch.Tensor | SideRows, cols: torch.Tensor,
           ratings: torch.Tensor | Ratings, implicit: bool,
           clip: tuple[float, float] | None = None) -> tuple[float, float]:
    """(sum of squared, sum of absolute) errors of the predictions x_u . y_i of the (row, col) pairs
    (each clipped to `clip` where given) against what the model predicts of `ratings` (`als.targets`),
    in double precision, PREDICT_CHUNK at a time."""
    squared = absolute = 0.0
    for at in range(0, len(ratings), PREDICT_CHUNK):
        part = slice(at, at + PREDICT_CHUNK)
        predicted = torch.linalg.vecdot(users.index_select(0, rows[part]), items.index_select(0, cols[part]))
        predicted = predicted.clamp(*clip) if clip is not None else predicted
        diff = predicted.double() - targets(ratings[part], implicit).double()
        squared += float((diff * diff).sum())
        absolute += float(diff.abs().sum())
    return squared, absolute


def side_errors(users: torch.Tensor, items: torch.Tensor, side: Side, implicit: bool) -> tuple[float, float]:
    """`errors` of the side's own ratings, its rows the users' (a by-user side's)."""
    return errors(users, items, SideRows(side), side.cols, side.ratings, implicit)
