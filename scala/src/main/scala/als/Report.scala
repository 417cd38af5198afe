package als

import org.apache.spark.SparkContext

import Result._

/** Builds the result line from a run's parts; used by the Scala and Java recommenders alike. */
object Report {
  private def round4(d: Double): Double = math.round(d * 1e4) / 1e4

  def counts(good: Long, bad: Long, users: Long, items: Long, train: Long, holdout: Long,
             trainPred: Long, heldPred: Long): JObj = JObj(Seq(
    "ratings" -> JInt(good), "skipped_rows" -> JInt(bad), "users" -> JInt(users), "items" -> JInt(items),
    "train" -> JInt(train), "holdout" -> JInt(holdout), "train_predictions" -> JInt(trainPred),
    "holdout_predictions" -> JInt(heldPred)))

  private def ranking(r: Option[Recommend.Ranking]): Json = r.map(_.json).getOrElse(JNull)

  def line(impl: String, o: Options, sc: SparkContext, t: Timer, r: RecommenderScala.Outcome): String = {
    val phases = t.seconds.toSeq.map { case (k, v) => k -> (JNum(round4(v)): Json) } :+ ("total" -> JNum(round4(t.seconds.values.sum)))
    Result.line(JObj(Seq(
      "schema" -> JInt(2), "impl" -> JStr(impl), "api" -> JStr(o.api),
      "data" -> JStr(o.data.getOrElse(o.input)), "input" -> JStr(o.input), "input_bytes" -> JInt(Options.inputBytes(o.input)),
      "params" -> JObj(Seq("rank" -> JInt(o.rank), "iterations" -> JInt(o.iterations), "reg" -> JNum(o.reg),
        "seed" -> JInt(o.seed), "blocks" -> JInt(o.blocks.getOrElse(sc.defaultParallelism).toLong), "holdout" -> JNum(o.holdout),
        "implicit" -> JBool(o.implicitPrefs), "alpha" -> JNum(o.alpha), "solver" -> JStr("cholesky"),
        "cg_steps" -> JInt(o.cgSteps.toLong))),
      "counts" -> r.counts,
      "metrics" -> JObj(Seq("train_mse" -> JNum(r.trainMse), "holdout_rmse" -> opt(r.holdoutRmse), "holdout_mae" -> opt(r.holdoutMae),
        "ranking" -> ranking(r.recommend.flatMap(_.ranking)), "baseline" -> ranking(r.recommend.flatMap(_.baseline)),
        "clip" -> Clip.json(o))),
      "recommended" -> r.recommend.map(_.json).getOrElse(JNull),
      "phases" -> JObj(phases),
      "runtime" -> JObj(Seq(
        "spark" -> JObj(Seq("version" -> JStr(sc.version), "master" -> JStr(sc.master), "app_id" -> JStr(sc.applicationId),
          "default_parallelism" -> JInt(sc.defaultParallelism.toLong))),
        "torch" -> JNull, "library" -> JNull)),
      "resources" -> Memory.resources,
      "started_at" -> JStr(t.startedAt),
      "skipped_examples" -> JArr(r.skipped.map(JStr)))))
  }
}
