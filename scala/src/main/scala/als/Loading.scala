package als

import org.apache.spark.SparkContext
import org.apache.spark.api.java.JavaRDD
import org.apache.spark.mllib.recommendation.Rating
import org.apache.spark.rdd.RDD
import org.apache.spark.sql.{Column, DataFrame, SparkSession, functions => F}

import scala.collection.JavaConverters._ // 2.12 and 2.13 alike

/** Loading a study-format file as recommender/spark/loading.py does: a fast forced pass that counts
  * good and bad lines and distinct (user, item) pairs (not counted with `unique`: the pairs are known
  * unique, Options.uniquePairs), and the exact, line-numbered pass under [[Rules]] only when the fast
  * one found anything wrong. */
object Loading {
  private val MaxReported = 10

  /** Counts, examples of skipped lines, and the exactly parsed ratings when the fast pass was not clean. */
  final case class Loaded(good: Long, bad: Long, skipped: Seq[String], exact: Option[RDD[Rating]]) {
    def skippedForJava: java.util.List[String] = skipped.asJava
    def exactForJava: JavaRDD[Rating] = exact.map(_.toJavaRDD()).orNull
  }

  /** The exact pass: every non-blank line under Rules, repeated pairs included; for files found wrong. */
  def checkLines(sc: SparkContext, path: String, skip: Boolean): Loaded = {
    val verdicts = sc.textFile(path).zipWithIndex().map { case (l, i) => (i + 1, l) }.filter(p => !Rules.isBlank(p._2))
      .map { case (n, l) => (n, Rules.lineProblem(l), l) }.cache()
    val valid = verdicts.filter(_._2.isEmpty).map { case (n, _, l) => (n, Rules.parse(l).get) }
    val repeats = valid.map { case (n, (u, i, _)) => ((u, i), n) }.groupByKey().flatMap { case ((u, i), lines) =>
      val sorted = lines.toSeq.sorted
      sorted.tail.map(n => (n, Rules.repeatProblem(u, i, sorted.head)))
    }.cache()
    val problems = verdicts.flatMap { case (n, p, _) => p.map(x => (n, x)) }.union(repeats)
    val bad = problems.count()
    val good = valid.count() - repeats.count()
    val found = problems.takeOrdered(MaxReported)(Ordering.by[(Long, String), Long](_._1))
    if (bad == 0 && good == 0) throw new BadInput(s"$path: no ratings (the file is empty)")
    if (bad > 0 && (!skip || good == 0)) {
      val (line, problem) = found.head
      val more = if (bad > 1) s" ($bad bad lines in all)" else ""
      val what = if (good > 0) problem else s"$problem; no valid ratings at all"
      throw new BadInput(s"$path, line $line: $what$more")
    }
    val rows = valid.subtractByKey(repeats).sortByKey().values.map { case (u, i, r) => Rating(u, i, r) }.cache()
    rows.count() // the load phase includes the exact parse
    verdicts.unpersist()
    Loaded(good, bad, found.map { case (n, p) => s"line $n: $p" }.toSeq, Some(rows))
  }

  /** The fast pass's verdict: clean when every line was good and no (user, item) pair repeats (taken on
    * trust with `unique`, when `distinctPairs` is never counted). */
  def settle(sc: SparkContext, path: String, good: Long, bad: Long, distinctPairs: => Long, skip: Boolean,
             unique: Boolean): Loaded =
    if (good > 0 && bad == 0 && (unique || distinctPairs == good)) Loaded(good, 0, Seq.empty, None)
    else checkLines(sc, path, skip)

  /** For the RDD recommenders (Scala and Java): `ratings` are the lines the fast pass found good. */
  def settleRatings(sc: SparkContext, path: String, good: Long, bad: Long, ratings: RDD[Rating], skip: Boolean,
                    unique: Boolean): Loaded =
    settle(sc, path, good, bad, ratings.map(r => (r.user.toLong << 32) + r.product).distinct().count(), skip, unique)

  /** Whether MLlib's solver failed on a singular normal matrix somewhere in `e`'s cause chain. */
  def singular(e: Throwable): Boolean = causedBy(e, "org.apache.spark.ml.optim.SingularMatrixException")

  /** The problem then (loading.py `singular_fit`). */
  def singularFit(path: String, o: Options): String =
    s"$path: ALS could not fit these ratings at rank ${o.rank} with --reg ${o.reg}: a normal matrix is singular " +
      "(ratings of very different magnitudes, or too little regularization); try a larger --reg"

  private def causedBy(e: Throwable, javaClass: String): Boolean =
    Iterator.iterate(e)(_.getCause).takeWhile(_ != null).exists(_.getClass.getName == javaClass)

  /** The problem when the holdout split leaves nothing to fit (loading.py `no_training_left`). */
  def noTrainingLeft(path: String, holdout: Double): String = {
    val fraction = java.math.BigDecimal.valueOf(holdout).stripTrailingZeros.toPlainString
    s"$path: no ratings left for training after holding out a fraction $fraction of them"
  }

  private val CacheCompressed = "spark.sql.inMemoryColumnarStorage.compressed"

  /** `body` with the DataFrame caches it builds held uncompressed, unless the session sets CacheCompressed
    * itself (loading.py `uncompressed_cache`: Spark's encoders cost more than the parse). */
  private def uncompressedCache[T](spark: SparkSession)(body: => T): T =
    if (spark.conf.get(CacheCompressed, null) != null) body
    else {
      spark.conf.set(CacheCompressed, "false")
      try body finally spark.conf.unset(CacheCompressed)
    }

  /** The characters of a blank line (Rules.isBlank): up to U+0020. */
  private val BlankChars = (0 to 0x20).map(_.toChar).mkString

  /** The non-blank lines of a text file as (u, i, r, three): the text before the first comma, between the
    * first two and after the last; `three` where those are all of it (exactly two commas), by byte lengths
    * (loading.py `_fields`). Cut out of the line's bytes: Spark's CSV reader made Java strings first. */
  private def fields(spark: SparkSession, path: String): DataFrame = {
    val line = F.col("value")
    val blank = F.when(line >= "!", false).otherwise(F.trim(line, BlankChars) === "")
    val (u, i, r) = (F.substring_index(line, ",", 1), F.substring_index(F.substring_index(line, ",", 2), ",", -1),
      F.substring_index(line, ",", -1))
    val three = F.octet_length(u) + F.octet_length(i) + F.octet_length(r) + 2 === F.octet_length(line)
    spark.read.text(path).filter(!blank).select(u.as("u"), i.as("i"), r.as("r"), three.as("three"))
  }

  /** SQL for a field with Rules' whitespace trimmed (SQL functions, which Spark 3.5 has too). */
  private def trimmed(field: String): String = s"trim(BOTH ' \\t\\r' FROM $field)"

  /** How many decimal digits a non-negative int has (1 for 0): comparisons only, nothing allocated. */
  private def digits(value: Column): Column =
    (2 to 9).foldLeft(F.when(value < 10, 1))((count, n) => count.when(value < math.pow(10, n).toInt, n)).otherwise(10)

  /** (value, sure): sure only where the text is certainly a valid id. Written as Spark writes the int
    * back, as nearly every file does, it is sure when its bytes are exactly its value's digits (Spark's
    * cast takes only ASCII digits, a sign, a fraction and surrounding whitespace, each adding a byte);
    * otherwise (spaces, leading zeros) it is read again from the trimmed text with zeros stripped. An
    * unsure valid one ("-0") only sends the file to the exact pass. */
  private def sureId(field: String): (Column, Column) = {
    val value = F.expr(s"try_cast($field AS INT)")
    val plain = value >= 0 && F.octet_length(F.col(field)) === digits(value)
    val text = F.expr(trimmed(field))
    val again = F.expr(s"try_cast(${trimmed(field)} AS INT)")
    val padded = F.expr(s"TRIM(LEADING '0' FROM ${trimmed(field)})")
    val exact = again.cast("string") === padded || (again === 0 && padded === "" && text =!= "")
    (F.when(plain, value).otherwise(again), F.when(plain, true).otherwise(again >= 0 && exact))
  }

  /** (value, sure): a decimal within Rules.RatingLimit (loading.py `_sure_rating`). Java's double parser
    * takes Rules.FloatPattern's grammar and besides it only characters up to U+0020 around the number, a
    * type suffix, hexadecimal, NaN and Infinity; so a text that starts above U+0020, ends in a digit or a
    * point and holds no `x` is settled by byte compares; otherwise only the pattern's characters and
    * Rules' whitespace are allowed. */
  private def sureRating(field: String): (Column, Column) = {
    val text = F.col(field)
    val value = F.expr(s"try_cast($field AS DOUBLE)")
    val bounded = F.abs(value) <= Rules.RatingLimit
    val ends = "0123456789.".map(c => text.endsWith(c.toString)).reduce(_ || _)
    val plain = text >= "!" && ends && !text.contains("x") && !text.contains("X")
    val allowed = F.translate(text, "0123456789.eE+- \t\r", "") === ""
    (value, F.when(plain, bounded).otherwise(allowed && bounded))
  }

  /** Ratings as a cached DataFrame (user int, item int, rating float), parsed from Spark's text reader;
    * `unique`: the pairs are known unique (Options.uniquePairs), so no distinct count. */
  def loadDf(spark: SparkSession, path: String, skip: Boolean, unique: Boolean): (DataFrame, Loaded) = {
    val (user, sureUser) = sureId("u")
    val (item, sureItem) = sureId("i")
    val (rating, sureRatingOk) = sureRating("r")
    val ok = F.coalesce(F.col("three") && sureUser && sureItem && sureRatingOk, F.lit(false))
    // Bad rows keep whatever their casts gave: only the rows with `ok` are ever read.
    val parsed = fields(spark, path)
      .select(ok.as("ok"), user.as("user"), item.as("item"), rating.cast("float").as("rating"))
    val row = uncompressedCache(spark)(parsed.cache().agg(F.count(F.lit(1)), F.count_if(F.col("ok"))).first())
    val good = row.getLong(1)
    val ratings = parsed.filter("ok").select("user", "item", "rating")
    val pairs = F.col("user").cast("long") * (1L << 32) + F.col("item").cast("long")
    val loaded = settle(spark.sparkContext, path, good, row.getLong(0) - good, ratings.select(pairs).distinct().count(),
      skip, unique)
    loaded.exact match {
      case None => (ratings, loaded)
      case Some(rows) =>
        parsed.unpersist()
        import spark.implicits._
        (rows.map(r => (r.user, r.product, r.rating.toFloat)).toDF("user", "item", "rating").cache(), loaded)
    }
  }
}
