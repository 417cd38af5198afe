package als

import org.apache.spark.ml.recommendation.ALSModel
import org.apache.spark.mllib.evaluation.RankingMetrics
import org.apache.spark.mllib.recommendation.{MatrixFactorizationModel, Rating}
import org.apache.spark.rdd.RDD
import org.apache.spark.sql.{Column, DataFrame, functions => F}

import Result._

/** The recommend phase of the Scala and Java recommenders, as recommender/spark/{df,rdd,ranking}.py do it:
  * MLlib's own top-k for every user (`recommendForAllUsers`, `recommendProductsForUsers`), rated items left
  * out exactly by asking for k + (the most items any user rated) and dropping each user's own; with a
  * holdout, Spark's `RankingMetrics` of those lists and of the most-popular baseline's. */
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

  /** Items by training count, most rated first, ties by the lower id: the first `n`. */
  private def popular(counts: Array[(Int, Long)], n: Int): Array[Int] =
    counts.sortBy { case (item, count) => (-count, item) }.take(n).map(_._1)

  def rdd(model: MatrixFactorizationModel, train: RDD[Rating], holdout: Option[RDD[Rating]], o: Options,
          t: Timer): Done = {
    val k = math.min(o.topK.toLong, model.productFeatures.count()).toInt
    val (lists, rated, most, users) = t.phase("recommend") {
      val rated = if (o.excludeRated) Some(train.map(r => (r.user, r.product)).groupByKey().mapValues(_.toSet).cache())
        else None
      val most = rated.map(_.map(_._2.size).fold(0)(math.max)).getOrElse(0)
      val found = model.recommendProductsForUsers(k + most)
      val lists = (rated match {
        case None => found.mapValues(_.map(_.product).take(k))
        case Some(r) => found.leftOuterJoin(r).mapValues { case (rs, seen) =>
          val skip = seen.getOrElse(Set.empty[Int])
          rs.map(_.product).filterNot(skip).take(k)
        }
      }).cache()
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

  def df(model: ALSModel, train: DataFrame, holdout: Option[DataFrame], o: Options, t: Timer): Done = {
    val k = math.min(o.topK.toLong, model.itemFactors.count()).toInt
    val (lists, rated, most, users) = t.phase("recommend") {
      val rated = if (o.excludeRated) Some(train.groupBy("user").agg(F.collect_set("item").as("rated")).cache()) else None
      val most = rated.map { r =>
        val row = r.agg(F.max(F.size(F.col("rated")))).first()
        if (row.isNullAt(0)) 0 else row.getInt(0)
      }.getOrElse(0)
      val found = model.recommendForAllUsers(k + most).select(F.col("user"), F.col("recommendations.item").as("items"))
      val lists = keepUnrated(found, rated, k).cache()
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
