package als

import java.io.File
import java.time.Instant
import java.time.temporal.ChronoUnit
import java.util.UUID

import org.apache.spark.SparkContext

import Result._

/** Input that cannot be used; the message names the file and, where there is one, the line. */
class BadInput(message: String) extends RuntimeException(message)

/** The arguments every implementation takes (see recommender/cli.py add_als_arguments). */
final case class Options(input: String, api: String, rank: Int, iterations: Int, reg: Double, seed: Long,
                         blocks: Option[Int], holdout: Double, skipBadRows: Boolean, checkpointDir: Option[String],
                         data: Option[String])

object Options {
  val usage = "ratings.csv [--api rdd|df] [--rank N] [--iterations N] [--reg X] [--seed N] [--blocks N] " +
    "[--holdout X] [--skip-bad-rows] [--checkpoint-dir DIR] [--data NAME]"

  def parse(args: Array[String], impl: String): Options = {
    var o = Options("", "df", 8, 15, 0.01, 42L, None, 0.0, skipBadRows = false, None, None)
    var rest = args.toList
    def fail(msg: String): Nothing = { System.err.println(s"error: $msg\nusage: $impl $usage"); sys.exit(2) }
    def num[T](name: String, v: String, f: String => T): T = try f(v) catch { case _: NumberFormatException => fail(s"$name: '$v' is not a number") }
    while (rest.nonEmpty) {
      rest match {
        case "--skip-bad-rows" :: tail => o = o.copy(skipBadRows = true); rest = tail
        case flag :: value :: tail if flag.startsWith("--") =>
          o = flag match {
            case "--api" => if (value == "rdd" || value == "df") o.copy(api = value) else fail(s"--api: '$value' is not rdd or df")
            case "--rank" => o.copy(rank = num(flag, value, _.toInt))
            case "--iterations" => o.copy(iterations = num(flag, value, _.toInt))
            case "--reg" => o.copy(reg = num(flag, value, _.toDouble))
            case "--seed" => o.copy(seed = num(flag, value, _.toLong))
            case "--blocks" => o.copy(blocks = Some(num(flag, value, _.toInt)))
            case "--holdout" => o.copy(holdout = num(flag, value, _.toDouble))
            case "--checkpoint-dir" => o.copy(checkpointDir = Some(value))
            case "--data" => o.copy(data = Some(value))
            case _ => fail(s"unknown option $flag")
          }
          rest = tail
        case arg :: tail if !arg.startsWith("--") && o.input.isEmpty => o = o.copy(input = arg); rest = tail
        case arg :: _ => fail(s"unexpected argument $arg")
        case Nil =>
      }
    }
    if (o.input.isEmpty) fail("no ratings file given")
    if (o.rank < 1 || o.iterations < 1) fail("rank and iterations must be at least 1")
    if (o.reg < 0) fail("regularization must not be negative")
    if (o.blocks.exists(_ < 1)) fail("blocks must be at least 1")
    if (o.holdout < 0 || o.holdout >= 1) fail("holdout must be in [0, 1)")
    if (o.seed < 0) fail("seed must not be negative")
    o
  }

  /** A checkpoint directory is always set: without one ALS overflows the stack near 20 iterations. */
  def setCheckpointDir(sc: SparkContext, o: Options): Unit =
    sc.setCheckpointDir(o.checkpointDir.getOrElse(s"/tmp/als-checkpoints/${UUID.randomUUID().toString.replace("-", "")}"))

  private def localPath(path: String): Option[String] =
    if (path.startsWith("file:")) Some(new java.net.URI(path).getPath)
    else if (path.matches("^[a-zA-Z][a-zA-Z0-9+.-]*://.*")) None
    else Some(path)

  def checkSource(path: String): Unit = localPath(path).foreach { p =>
    val f = new File(p)
    if (!f.exists()) throw new BadInput(s"$p: file does not exist")
    if (!f.isFile) throw new BadInput(s"$p: is not a file")
    if (f.length() == 0) throw new BadInput(s"$p: file is empty")
  }

  def inputBytes(path: String): Long = localPath(path).map(p => new File(p).length()).getOrElse(0L)
}

/** Seconds per phase, in the order load, fit, predict, evaluate. */
class Timer {
  val seconds = scala.collection.mutable.LinkedHashMap.empty[String, Double]
  val startedAt: String = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString.replace("Z", "+00:00")

  def record(name: String, elapsed: Double): Unit = seconds(name) = seconds.getOrElse(name, 0.0) + elapsed

  /** Times `body`; the stderr markers let a log (spark-rapids' explain output) be split by phase. */
  def phase[T](name: String)(body: => T): T = {
    System.err.println(s"ALS_PHASE $name begin")
    val start = System.nanoTime()
    try body finally {
      record(name, (System.nanoTime() - start) / 1e9)
      System.err.println(s"ALS_PHASE $name end")
    }
  }
}

/** Builds the result line from a run's parts; used by the Scala and Java recommenders alike. */
object Report {
  private def round4(d: Double): Double = math.round(d * 1e4) / 1e4

  def counts(good: Long, bad: Long, users: Long, items: Long, train: Long, holdout: Long,
             trainPred: Long, heldPred: Long): JObj = JObj(Seq(
    "ratings" -> JInt(good), "skipped_rows" -> JInt(bad), "users" -> JInt(users), "items" -> JInt(items),
    "train" -> JInt(train), "holdout" -> JInt(holdout), "train_predictions" -> JInt(trainPred),
    "holdout_predictions" -> JInt(heldPred)))

  def line(impl: String, o: Options, sc: SparkContext, t: Timer, r: RecommenderScala.Outcome): String = {
    val phases = t.seconds.toSeq.map { case (k, v) => k -> (JNum(round4(v)): Json) } :+ ("total" -> JNum(round4(t.seconds.values.sum)))
    Result.line(JObj(Seq(
      "schema" -> JInt(1), "impl" -> JStr(impl), "api" -> JStr(o.api),
      "data" -> JStr(o.data.getOrElse(o.input)), "input" -> JStr(o.input), "input_bytes" -> JInt(Options.inputBytes(o.input)),
      "params" -> JObj(Seq("rank" -> JInt(o.rank), "iterations" -> JInt(o.iterations), "reg" -> JNum(o.reg),
        "seed" -> JInt(o.seed), "blocks" -> JInt(o.blocks.getOrElse(sc.defaultParallelism).toLong), "holdout" -> JNum(o.holdout))),
      "counts" -> r.counts,
      "metrics" -> JObj(Seq("train_mse" -> JNum(r.trainMse), "holdout_rmse" -> opt(r.holdoutRmse), "holdout_mae" -> opt(r.holdoutMae))),
      "phases" -> JObj(phases),
      "spark" -> JObj(Seq("version" -> JStr(sc.version), "master" -> JStr(sc.master), "app_id" -> JStr(sc.applicationId),
        "default_parallelism" -> JInt(sc.defaultParallelism.toLong))),
      "started_at" -> JStr(t.startedAt),
      "skipped_examples" -> JArr(r.skipped.map(JStr)))))
  }
}
