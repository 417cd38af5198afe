package als

import org.apache.spark.SparkContext
import org.apache.spark.ml.recommendation.{ALS => MlALS}
import org.apache.spark.mllib.recommendation.{ALS, Rating}
import org.apache.spark.rdd.RDD
import org.apache.spark.sql.{Column, DataFrame, SparkSession, functions => F}

import scala.collection.JavaConverters._ // 2.12 and 2.13 alike

import Result._

/** The Scala recommender: same arguments, phases, checks and result line as the Python one.
  *
  * With `--implicit` it trains MLlib's implicit-feedback ALS (`ALS.trainImplicit(..., alpha, seed)`
  * on the RDD API, `setImplicitPrefs(true).setAlpha(alpha)` on the DataFrame one). That model
  * predicts a preference p (1 where the rating r > 0, else 0), not a rating, so the training MSE and
  * the holdout RMSE and MAE are measured against p, and holdout predictions are not clipped (`Clip`).
  * The recommend phase is the same in both modes: it ranks by the model's scores.
  *
  *   spark-submit --class als.RecommenderScala als-recommender.jar ratings.csv [--api rdd|df] ... */
object RecommenderScala {
  private val TestMark = "_test" // marks the predefined test ratings (--test) in the DataFrame API
  final case class Outcome(counts: JObj, trainMse: Double, holdoutRmse: Option[Double], holdoutMae: Option[Double],
                           skipped: Seq[String], recommend: Option[Recommend.Done] = None)

  def main(args: Array[String]): Unit = {
    VersionGuard.check()
    val opts = Options.parse(args, "scala")
    val spark = SparkSession.builder().appName(s"als-scala-${opts.api}").getOrCreate()
    val code = try {
      Options.setCheckpointDir(spark.sparkContext, opts)
      val timer = new Timer
      val outcome = if (opts.api == "rdd") runRdd(spark.sparkContext, opts, timer) else runDf(spark, opts, timer)
      println(Report.line("scala", opts, spark.sparkContext, timer, outcome))
      0
    } catch {
      case e: BadInput => System.err.println(s"error: ${e.getMessage}"); 2
      case e: Exception if Loading.singular(e) => System.err.println(s"error: ${Loading.singularFit(opts.input, opts)}"); 2
    } finally spark.stop()
    if (code != 0) sys.exit(code)
  }

  /** What implicit-feedback ALS predicts for a rating: MLlib's preference, 1 where it is positive, else 0. */
  def preference(rating: Double): Double = if (rating > 0) 1.0 else 0.0

  /** What a prediction's error is measured against: the rating, or in implicit mode its preference. */
  def target(o: Options, rating: Column): Column =
    if (o.implicitPrefs) F.when(rating > 0, F.lit(1.0)).otherwise(F.lit(0.0)) else rating

  /** For the Java recommender: its outcome from Java collections and nullable doubles. */
  def outcomeForJava(counts: JObj, mse: java.lang.Double, rmse: java.lang.Double, mae: java.lang.Double,
                     skipped: java.util.List[String]): Outcome =
    Outcome(counts, mse, Option(rmse).map(_.doubleValue), Option(mae).map(_.doubleValue), skipped.asScala.toList)

  /** The same, with the recommend phase's outcome (null: none). */
  def outcomeForJava(counts: JObj, mse: java.lang.Double, rmse: java.lang.Double, mae: java.lang.Double,
                     skipped: java.util.List[String], recommend: Recommend.Done): Outcome =
    outcomeForJava(counts, mse, rmse, mae, skipped).copy(recommend = Option(recommend))

  /** A ratings file as an RDD of Ratings: the fast pass, and the exact one where it found anything wrong. */
  def loadRdd(sc: SparkContext, path: String, skip: Boolean, uniquePairs: Boolean): (RDD[Rating], Loading.Loaded) = {
    Options.checkSource(path)
    val p = sc.textFile(path).filter(l => !Rules.isBlank(l))
      .map(l => Rules.parse(l).map { case (u, i, r) => Rating(u, i, r) }).cache()
    val (g, b) = p.map(r => if (r.isDefined) (1L, 0L) else (0L, 1L)).fold((0L, 0L))((a, c) => (a._1 + c._1, a._2 + c._2))
    val fast = p.flatMap(x => x)
    val loaded = Loading.settleRatings(sc, path, g, b, fast, skip, uniquePairs)
    (loaded.exact.getOrElse(fast), loaded)
  }

  def runRdd(sc: SparkContext, o: Options, t: Timer): Outcome = {
    val blocks = o.blocks.getOrElse(sc.defaultParallelism)
    val (data, loaded, test) = t.phase("load") {
      val (r, l) = loadRdd(sc, o.input, o.skipBadRows, o.uniquePairs)
      (r, l, o.test.map(loadRdd(sc, _, o.skipBadRows, o.uniquePairs)))
    }
    val seed = o.seed
    val cut = Rules.threshold(o.holdout)
    val train = if (cut > 0) data.filter(r => Rules.holdoutHash(r.user, r.product, seed) >= cut) else data
    val holdout = test.map(_._1) // a predefined test file replaces the hashed holdout
      .orElse(if (cut > 0) Some(data.filter(r => Rules.holdoutHash(r.user, r.product, seed) < cut)) else None)
    val ratings = test.map(tt => data.union(tt._1)).getOrElse(data)
    val good = loaded.good + test.map(_._2.good).getOrElse(0L)
    val bad = loaded.bad + test.map(_._2.bad).getOrElse(0L)
    val skipped = loaded.skipped ++ test.map(_._2.skipped).getOrElse(Seq.empty)
    if (train.isEmpty()) throw new BadInput(Loading.noTrainingLeft(o.input, o.holdout))

    val model = t.phase("fit") {
      val m = if (o.implicitPrefs) ALS.trainImplicit(train, o.rank, o.iterations, o.reg, blocks, o.alpha, o.seed)
              else ALS.train(train, o.rank, o.iterations, o.reg, blocks, o.seed)
      m.userFeatures.count()
      m
    }
    def predict(rs: RDD[Rating]): (RDD[((Int, Int), Double)], Long) = {
      val p = model.predict(rs.map(r => (r.user, r.product))).map(r => ((r.user, r.product), r.rating)).cache()
      (p, p.count())
    }
    val (trainPred, nTrainPred, heldPred, nHeldPred) = t.phase("predict") {
      val (tp, ntp) = predict(train)
      val (hp, nhp) = holdout.map(predict).map { case (p, n) => (Some(p), n) }.getOrElse((None, 0L))
      (tp, ntp, hp, nhp)
    }
    val implicitPrefs = o.implicitPrefs
    def errors(rs: RDD[Rating], preds: RDD[((Int, Int), Double)]): (Double, Double, Long) =
      rs.map(r => ((r.user, r.product), if (implicitPrefs) preference(r.rating) else r.rating)).join(preds).values
        .map { case (a, b) => ((a - b) * (a - b), math.abs(a - b), 1L) }
        .fold((0.0, 0.0, 0L))((x, y) => (x._1 + y._1, x._2 + y._2, x._3 + y._3))
    val (mse, rmse, mae) = t.phase("evaluate") {
      val (sq, _, n) = errors(train, trainPred)
      val held = for (h <- holdout; hp <- heldPred) yield errors(h, Clip.rdd(hp, o))
      val hm = held.filter(_._3 > 0)
      (sq / n, hm.map(x => math.sqrt(x._1 / x._3)), hm.map(x => x._2 / x._3))
    }
    val recommended = if (o.topK > 0) Some(Recommend.rdd(model, train, holdout, o, t)) else None
    val counts = Report.counts(good, bad, ratings.map(_.user).distinct().count(), ratings.map(_.product).distinct().count(),
      train.count(), holdout.map(_.count()).getOrElse(0L), nTrainPred, nHeldPred)
    Outcome(counts, mse, rmse, mae, skipped, recommended)
  }

  def runDf(spark: SparkSession, o: Options, t: Timer): Outcome = {
    val blocks = o.blocks.getOrElse(spark.sparkContext.defaultParallelism)
    val (data, loaded, test) = t.phase("load") {
      Options.checkSource(o.input)
      val (frame, l) = Loading.loadDf(spark, o.input, o.skipBadRows, o.uniquePairs)
      (frame, l, o.test.map { path => Options.checkSource(path); Loading.loadDf(spark, path, o.skipBadRows, o.uniquePairs) })
    }
    val good = loaded.good + test.map(_._2.good).getOrElse(0L)
    val bad = loaded.bad + test.map(_._2.bad).getOrElse(0L)
    val skipped = loaded.skipped ++ test.map(_._2.skipped).getOrElse(Seq.empty)
    // The predefined test ratings, marked, replace the hashed holdout (df.py `with_test` and `split`).
    val (ratings, held) = test match {
      case Some((frame, _)) =>
        (data.withColumn(TestMark, F.lit(false)).unionByName(frame.withColumn(TestMark, F.lit(true))), F.col(TestMark))
      case None => (data, F.expr(Rules.holdoutSql("user", "item", o.seed)) < Rules.threshold(o.holdout))
    }
    val cut = test.isDefined || Rules.threshold(o.holdout) > 0
    val train = if (cut) ratings.filter(!held).drop(TestMark) else ratings
    val holdout = if (cut) Some(ratings.filter(held).drop(TestMark)) else None
    if (train.isEmpty) throw new BadInput(Loading.noTrainingLeft(o.input, o.holdout))
    val als = new MlALS().setRank(o.rank).setMaxIter(o.iterations).setRegParam(o.reg).setSeed(o.seed)
      .setNumUserBlocks(blocks).setNumItemBlocks(blocks).setUserCol("user").setItemCol("item")
      .setRatingCol("rating").setImplicitPrefs(o.implicitPrefs).setAlpha(o.alpha).setColdStartStrategy("drop")
    val model = t.phase("fit") {
      val m = als.fit(train)
      m.userFactors.count()
      m
    }
    def predict(df: DataFrame): (DataFrame, Long) = {
      val p = model.transform(df).cache()
      (p, p.count())
    }
    val (trainPred, nTrainPred, heldPred, nHeldPred) = t.phase("predict") {
      val (tp, ntp) = predict(train)
      val (hp, nhp) = holdout.map(predict).map { case (p, n) => (Some(p), n) }.getOrElse((None, 0L))
      (tp, ntp, hp, nhp)
    }
    def errors(p: DataFrame): (Double, Double, Long) = {
      val e = target(o, F.col("rating").cast("double")) - F.col("prediction").cast("double")
      val row = p.agg(F.sum(e * e), F.sum(F.abs(e)), F.count(F.lit(1))).first()
      (if (row.isNullAt(0)) 0.0 else row.getDouble(0), if (row.isNullAt(1)) 0.0 else row.getDouble(1), row.getLong(2))
    }
    val (mse, rmse, mae) = t.phase("evaluate") {
      val (sq, _, n) = errors(trainPred)
      val hm = heldPred.map(p => errors(Clip.df(p, o))).filter(_._3 > 0)
      (sq / n, hm.map(x => math.sqrt(x._1 / x._3)), hm.map(x => x._2 / x._3))
    }
    val recommended = if (o.topK > 0) Some(Recommend.df(model, train, holdout, o, t)) else None
    val sizes = ratings.agg(F.countDistinct("user"), F.countDistinct("item"),
      F.sum(if (cut) (!held).cast("long") else F.lit(1L))).first()
    val nTrain = sizes.getLong(2)
    val counts = Report.counts(good, bad, sizes.getLong(0), sizes.getLong(1), nTrain, good - nTrain, nTrainPred, nHeldPred)
    Outcome(counts, mse, rmse, mae, skipped, recommended)
  }
}
