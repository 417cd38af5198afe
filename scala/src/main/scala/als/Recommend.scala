package als

import org.apache.spark.ml.recommendation.ALSModel
import org.apache.spark.mllib.evaluation.RankingMetrics
import org.apache.spark.mllib.recommendation.{MatrixFactorizationModel, Rating}
import org.apache.spark.rdd.RDD
import org.apache.spark.sql.{Column, DataFrame, functions => F}

import Result._

/** The recommend phase of the Scala and Java recommenders, as recommender/spark/{df,rdd,ranking}.py do it:
  * MLlib's own top-k for every user (`recommendForAllUsers`, `recommendProductsForUsers`), rated items left
  * out exactly in two passes (ranking.py says why): k + m items asked of every user, each list less its
  * user's rated items, then k + (the most they rated) asked of just the users left short
  * (`recommendForUserSubset`; on the RDD API, a model of just their factors); with a holdout, Spark's
  * `RankingMetrics` of those lists and of the most-popular baseline's. The passes go to stderr. */
object Recommend {
  final case class Ranking(k: Int, users: Long, precision: Double, recall: Double, ndcg: Double, map: Double) {
    def json: Json = JObj(Seq("k" -> JInt(k), "users" -> JInt(users), "precision" -> JNum(precision),
      "recall" -> JNum(recall), "ndcg" -> JNum(ndcg), "map" -> JNum(map)))
  }

  /** What the phase produced: the `recommended` object and the ranking metrics of the result line. */
  final case class Done(k: Int, users: Long, excludeRated: Boolean, relevance: Option[Double],
                        ranking: Option[Ranking], baseline: Option[Ranking]) {
    def json: Json = JObj(Seq("k" -> JInt(k), "users" -> JInt(users), "exclude_rated" -> JBool(excludeRated),
      "relevance" -> opt(relevance)))
  }

  /** Spark's RankingMetrics over users with a list and a relevant item; None when there are none. */
  def metrics(pairs: RDD[(Array[Int], Array[Int])], k: Int): Option[Ranking] = {
    val cached = pairs.cache()
    val users = cached.count()
    val ranking = if (users == 0) None else {
      val m = new RankingMetrics(cached)
      Some(Ranking(k, users, m.precisionAt(k), m.recallAt(k), m.ndcgAt(k), m.meanAveragePrecisionAt(k)))
    }
    cached.unpersist()
    ranking
  }

  /** The first pass's m from {items rated -> users who rated that many}: the m asking the fewest items of
    * both passes at worst, (k + m) * users + (k + most) * (users who rated more than m), the smallest on
    * ties (recommender/spark/ranking.py `margin`, the same rule). */
  def margin(counts: Map[Int, Long], k: Int): Int = {
    val users = counts.values.sum
    val most = if (counts.isEmpty) 0 else counts.keys.max
    val candidates = (counts.keySet + 0).toSeq.sorted
    val above = candidates.scanLeft(users)((left, m) => left - counts.getOrElse(m, 0L)).tail // rated more than m
    candidates.zip(above).minBy { case (m, a) => ((k + m).toLong * users + (k + most).toLong * a, m) }._1
  }

  private def note(k: Int, m: Int, users: Long, asked: Int): Unit = System.err.println(
    s"recommend: k = $k, asked k + $m of every user, then " +
      (if (users > 0) s"k + $asked of $users users" else "no second pass"))

  /** Items by training count, most rated first, ties by the lower id: the first `n`. */
  private def popular(counts: Array[(Int, Long)], n: Int): Array[Int] =
    counts.sortBy { case (item, count) => (-count, item) }.take(n).map(_._1)

  def rdd(model: MatrixFactorizationModel, train: RDD[Rating], holdout: Option[RDD[Rating]], o: Options,
          t: Timer): Done = {
    val k = math.min(o.topK.toLong, model.productFeatures.count()).toInt
    val (lists, rated, most, users) = t.phase("recommend") {
      val (lists, rated, most) = if (!o.excludeRated)
        (model.recommendProductsForUsers(k).mapValues(_.map(_.product).take(k)).cache(), None, 0)
      else {
        val rated = train.map(r => (r.user, r.product)).groupByKey().mapValues(_.toSet).cache()
        val (lists, most) = rddLists(model, rated, k)
        (lists, Some(rated), most)
      }
      (lists, rated, most, lists.count())
    }
    val (ranking, baseline) = holdout.map { h => t.phase("evaluate") {
      val threshold = o.relevance
      val relevant = h.filter(r => threshold.forall(r.rating >= _)).map(r => (r.user, r.product)).groupByKey()
        .mapValues(_.toArray).cache()
      val order = popular(train.map(r => (r.product, 1L)).reduceByKey(_ + _).collect(), k + most)
      val base = rated match {
        case Some(r) => r.mapValues(seen => order.filterNot(seen).take(k))
        case None => lists.mapValues(_ => order.take(k))
      }
      (metrics(lists.join(relevant).values, k), metrics(base.join(relevant).values, k))
    }}.getOrElse((None, None))
    Done(k, users, o.excludeRated, o.relevance, ranking, baseline)
  }

  /** (user, k best unrated items), cached, and the most items a user rated: two passes. */
  private def rddLists(model: MatrixFactorizationModel, rated: RDD[(Int, Set[Int])], k: Int): (RDD[(Int, Array[Int])], Int) = {
    val counts = rated.map(_._2.size).countByValue().toMap
    val m = margin(counts, k)
    def unrated(found: RDD[(Int, Array[Rating])]): RDD[(Int, (Array[Int], Int))] =
      found.join(rated).mapValues { case (rs, seen) => (rs.map(_.product).filterNot(seen).take(k), seen.size) }
    val first = unrated(model.recommendProductsForUsers(k + m)).cache()
    val cut = first.filter { case (_, (items, n)) => items.length < k && n > m }.mapValues(_._2).cache()
    val (users, asked) = cut.values.map(n => (1L, n)).fold((0L, 0))((a, b) => (a._1 + b._1, math.max(a._2, b._2)))
    note(k, m, users, asked)
    val lists = if (users == 0) first.mapValues(_._1).cache() else {
      val sub = new MatrixFactorizationModel(model.rank, model.userFeatures.join(cut).mapValues(_._1), model.productFeatures)
      first.subtractByKey(cut).union(unrated(sub.recommendProductsForUsers(k + asked))).mapValues(_._1).cache()
    }
    lists.count()
    first.unpersist()
    cut.unpersist()
    (lists, if (counts.isEmpty) 0 else counts.keys.max)
  }

  /** For the Java recommender: a nullable holdout. */
  def rddForJava(model: MatrixFactorizationModel, train: RDD[Rating], holdout: RDD[Rating], o: Options, t: Timer): Done =
    rdd(model, train, Option(holdout), o, t)

  private def keepUnrated(lists: DataFrame, rated: Option[DataFrame], k: Int): DataFrame = rated match {
    case None => lists.select(F.col("user"), F.slice(F.col("items"), 1, k).as("items"))
    case Some(r) =>
      val seen = F.coalesce(F.col("rated"), F.array().cast("array<int>"))
      val unrated = F.filter(F.col("items"), (item: Column) => !F.array_contains(seen, item))
      lists.join(r, Seq("user"), "left").select(F.col("user"), F.slice(unrated, 1, k).as("items"))
  }

  private def pairs(lists: DataFrame, relevant: DataFrame): RDD[(Array[Int], Array[Int])] =
    lists.join(relevant, "user").select("items", "relevant").rdd
      .map(row => (row.getSeq[Int](0).toArray, row.getSeq[Int](1).toArray))

  private def found(recommendations: DataFrame): DataFrame =
    recommendations.select(F.col("user"), F.col("recommendations.item").as("items"))

  /** (user, items: k best unrated), cached, and the most items a user rated: two passes. */
  private def dfLists(model: ALSModel, rated: DataFrame, k: Int): (DataFrame, Int) = {
    val counts = rated.groupBy(F.size(F.col("rated")).as("n")).count().collect()
      .map(row => (row.getInt(0), row.getLong(1))).toMap
    val m = margin(counts, k)
    val first = keepUnrated(found(model.recommendForAllUsers(k + m)), Some(rated), k).cache()
    val cut = first.join(rated, "user").where(F.size(F.col("items")) < k && F.size(F.col("rated")) > m)
    val row = cut.agg(F.count(F.lit(1)), F.max(F.size(F.col("rated")))).first()
    val (users, asked) = (row.getLong(0), if (row.isNullAt(1)) 0 else row.getInt(1))
    note(k, m, users, asked)
    val lists = if (users == 0) first else {
      val who = cut.select("user").cache()
      val again = keepUnrated(found(model.recommendForUserSubset(who, k + asked)), Some(rated), k)
      val both = first.join(who, Seq("user"), "left_anti").unionByName(again).cache()
      both.count()
      first.unpersist()
      who.unpersist()
      both
    }
    (lists, if (counts.isEmpty) 0 else counts.keys.max)
  }

  def df(model: ALSModel, train: DataFrame, holdout: Option[DataFrame], o: Options, t: Timer): Done = {
    val k = math.min(o.topK.toLong, model.itemFactors.count()).toInt
    val (lists, rated, most, users) = t.phase("recommend") {
      val (lists, rated, most) = if (!o.excludeRated) (keepUnrated(found(model.recommendForAllUsers(k)), None, k).cache(), None, 0)
        else {
          val rated = train.groupBy("user").agg(F.collect_set("item").as("rated")).cache()
          val (lists, most) = dfLists(model, rated, k)
          (lists, Some(rated), most)
        }
      (lists, rated, most, lists.count())
    }
    val (ranking, baseline) = holdout.map { h => t.phase("evaluate") {
      val kept = o.relevance.map(x => h.filter(F.col("rating") >= x)).getOrElse(h)
      val relevant = kept.groupBy("user").agg(F.collect_set("item").as("relevant")).cache()
      val counts = train.groupBy("item").count().collect().map(row => (row.getInt(0), row.getLong(1)))
      val order = popular(counts, k + most)
      val base = keepUnrated(lists.select(F.col("user"), F.typedLit(order).as("items")), rated, k)
      (metrics(pairs(lists, relevant), k), metrics(pairs(base, relevant), k))
    }}.getOrElse((None, None))
    Done(k, users, o.excludeRated, o.relevance, ranking, baseline)
  }
}
