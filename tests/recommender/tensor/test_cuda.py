"""The PyTorch engine on CUDA against the same engine on the CPU (float32 accuracy), at the ranks
the GPU benchmark runs. Needs no pyspark and no MovieLens mirror: it runs on a bare CUDA machine
(`python -m experiments.gpu` runs these first)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recommender.data.readers import write_study_csv
from recommender.data.synthetic import SyntheticSpec, generate
from recommender.params import ALSParams
from tests.engines import run_engine

torch = pytest.importorskip("torch", reason="the PyTorch engine needs torch: pip install -r requirements-torch.txt")
from recommender.tensor import als as torch_als  # noqa: E402
from recommender.tensor.topk import top_k  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.gpu, pytest.mark.cuda]
RANKS = (10, 32, 64, 128)


@pytest.fixture(scope="module")
def ratings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = generate(SyntheticSpec(users=3_000, items=1_500, ratings=200_000, rank=8, seed=13))
    path = tmp_path_factory.mktemp("cuda") / "ratings.csv"
    write_study_csv(data.frame, path)
    return path


MODES = [pytest.param({}, id="explicit"), pytest.param({"implicit": True, "alpha": 5.0}, id="implicit"),
         pytest.param({"solver": "cg"}, id="explicit-cg"),
         pytest.param({"implicit": True, "alpha": 5.0, "solver": "cg"}, id="implicit-cg")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("rank", RANKS)
def test_cuda_matches_cpu_to_float32_accuracy(ratings: Path, rank: int, mode: dict[str, object]) -> None:
    """CUDA's sparse kernels (cuSPARSE's CSR products and sampled_addmm for CG) give the CPU's model."""
    params = ALSParams(rank=rank, iterations=8, reg=0.05, seed=3, holdout=0.2, **mode)  # type: ignore[arg-type]
    cpu = run_engine("torch", ratings, params=params, device="cpu")
    gpu = run_engine("torch", ratings, params=params, device="cuda")
    assert gpu.runtime.torch is not None and gpu.runtime.torch.device.startswith("cuda")
    assert gpu.resources["peak_device_bytes"] > 0
    assert gpu.counts == cpu.counts
    assert gpu.metrics.train_mse == pytest.approx(cpu.metrics.train_mse, rel=1e-4)
    assert gpu.metrics.holdout_rmse == pytest.approx(cpu.metrics.holdout_rmse, rel=1e-4)


@pytest.mark.parametrize("how", [torch_als.Solve(0.1), torch_als.Solve(0.1, implicit=True),
                                 torch_als.Solve(0.1, solver="cg"), torch_als.Solve(0.1, True, 5.0, "cg")],
                         ids=["explicit", "implicit", "explicit-cg", "implicit-cg"])
def test_rows_without_ratings_get_zero_factors_on_cuda(how: torch_als.Solve) -> None:
    device = torch.device("cuda")
    rows = torch.tensor([0, 0, 2, 2, 2], dtype=torch.int32, device=device)  # row 1 and row 3 have none
    cols = torch.tensor([0, 1, 0, 1, 2], dtype=torch.int32, device=device)
    side = torch_als.make_side(rows, cols, torch_als.encode(torch.ones(5, device=device)), 4, 3)
    fixed = torch.randn(3, 128, generator=torch.Generator().manual_seed(0)).to(device)
    solved = torch_als.solve_side(side, fixed, how)
    assert torch.isfinite(solved).all()
    assert torch.count_nonzero(solved[1]) == 0 and torch.count_nonzero(solved[3]) == 0


def test_top_k_on_cuda_equals_cpu() -> None:
    generator = torch.Generator().manual_seed(5)
    users, items = torch.randn(500, 64, generator=generator), torch.randn(900, 64, generator=generator)
    rng = np.random.default_rng(1)
    u, i = np.nonzero(rng.random((500, 900)) < 0.05)
    side = torch_als.make_side(torch.from_numpy(u.astype(np.int32)), torch.from_numpy(i.astype(np.int32)),
                               torch_als.encode(torch.ones(len(u))), 500, 900)
    cpu = top_k(users, items, 10, torch_als.rated(side))
    gpu_side = torch_als.make_side(*(t.cuda() for t in (torch.from_numpy(u.astype(np.int32)),
                                                         torch.from_numpy(i.astype(np.int32)))),
                                   torch_als.encode(torch.ones(len(u), device="cuda")), 500, 900)
    gpu = top_k(users.cuda(), items.cuda(), 10, torch_als.rated(gpu_side))
    torch.testing.assert_close(gpu.scores.cpu(), cpu.scores, rtol=1e-4, atol=1e-4)
    assert (gpu.items.cpu() == cpu.items).float().mean() > 0.99  # ties may order differently
