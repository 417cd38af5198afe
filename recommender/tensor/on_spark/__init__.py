"""`impl torch-spark`: the `tensor.als` solver, the whole fit in one Spark barrier stage.

One Spark job. Its shuffle-map stage reads the input (the Parquet conversion's row groups with
pyarrow, checked row by row in the same pass, or the study's text as `load_df` checked it) and routes each
rating once to the task that owns its user and once to the task that owns its item (a hash of the
id picks the task; holdout or `--test` ratings travel the same way), packed per input batch into
one binary chunk per task. Each barrier task keeps its user block and item block as torch tensors,
on its own GPU where Spark assigned one, for the whole fit. Every half-iteration each task solves
its rows (`als.solve_side`) and torch.distributed all-gathers the solved side (`tensor.collective`).
Predict, evaluate and recommend (each task's users' top-k against the gathered item factors, and
their ranking metrics) run in the same tasks; their sums are all-reduced, so only one small row
per task, and the factors only when asked for, cross back to the driver.

Phases (`run`): load is the driver's wait until every task holds its ratings and the group has met
(the Parquet read and check, the routing pass and shuffle write, the tasks' launch, imports and
shuffle read); fit is the tasks' setup (id exchange, CSR blocks) and iterations; predict, evaluate
and recommend are the tasks' own steps. Each of those is the slowest task's; load is the rest.

The package: `routing` (the first stage: read, check, route), `task` (the barrier task: read its
blocks, fit, predict, evaluate, recommend), `figures` (what each task measured), and `driver`,
the driver's side (`run`, `train`).

Barrier mode, and why `DataFrame.mapInArrow(..., barrier=True)`: Spark's `TorchDistributor`
runs `sc.parallelize(range(n), n).barrier().mapPartitions(...)` and starts `torchrun` in each
task, which suits a training script that reads its own data, not data Spark already holds.
spark-rapids-ml feeds the data in: `df.mapInPandas(train).rdd.barrier().mapPartitions(identity)`,
whose results leave through pickled Python rows into a `collect()`. The barrier flag on
`mapInArrow` (Spark 3.5+) does the same in one call and keeps Arrow on both sides, and its result
stays a DataFrame: a `repartition(1)` after it makes the barrier stage a shuffle-map stage, which
Spark retries as a whole when a task fails (a failed barrier result stage is never retried).
Each task starts from the same seeded factors and solves the same rows as the single-node engine,
so the model equals its model up to the order of float32 sums.
"""
