package als

import java.io.File
import java.util.UUID

import org.apache.spark.SparkContext

/** Input that cannot be used; the message names the file and, where there is one, the line. */
class BadInput(message: String) extends RuntimeException(message)

/** The arguments every implementation takes: recommender/params.py declares them, recommender/cli.py parses the same. */
final case class Options(input: String, api: String, rank: Int, iterations: Int, reg: Double, seed: Long,
                         blocks: Option[Int], holdout: Double, skipBadRows: Boolean, checkpointDir: Option[String],
                         data: Option[String], topK: Int = 0, excludeRated: Boolean = true,
                         relevance: Option[Double] = None, clip: Option[(Double, Double)] = None,
                         uniquePairs: Boolean = false, test: Option[String] = None, implicitPrefs: Boolean = false,
                         alpha: Double = 1.0, cgSteps: Int = 3)

object Options {
  val usage = "ratings.csv [--api rdd|df] [--rank N] [--iterations N] [--reg X] [--seed N] [--blocks N] " +
    "[--holdout X] [--skip-bad-rows] [--unique-pairs] [--checkpoint-dir DIR] [--data NAME] [--top-k K] " +
    "[--include-rated] [--relevance X] [--clip LOW,HIGH|off] [--test FILE] [--implicit] [--alpha X] " +
    "[--solver cholesky] [--cg-steps N]"

  def parse(args: Array[String], impl: String): Options = {
    var o = Options("", "df", 8, 15, 0.01, 42L, None, 0.0, skipBadRows = false, None, None)
    var rest = args.toList
    def fail(msg: String): Nothing = { System.err.println(s"error: $msg\nusage: $impl $usage"); sys.exit(2) }
    def num[T](name: String, v: String, f: String => T): T = try f(v) catch { case _: NumberFormatException => fail(s"$name: '$v' is not a number") }
    while (rest.nonEmpty) {
      rest match {
        case "--skip-bad-rows" :: tail => o = o.copy(skipBadRows = true); rest = tail
        // The pairs are known unique (a conversion the suite validated, Job.unique_pairs): no repeated-pair pass.
        case "--unique-pairs" :: tail => o = o.copy(uniquePairs = true); rest = tail
        case "--include-rated" :: tail => o = o.copy(excludeRated = false); rest = tail
        case "--implicit" :: tail => o = o.copy(implicitPrefs = true); rest = tail
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
            case "--top-k" => o.copy(topK = num(flag, value, _.toInt))
            case "--relevance" => o.copy(relevance = Some(num(flag, value, _.toDouble)))
            case "--clip" => o.copy(clip = num(flag, value, Clip.parse))
            case "--test" => o.copy(test = Some(value))
            case "--alpha" => o.copy(alpha = num(flag, value, _.toDouble))
            // MLlib solves each row by Cholesky: the conjugate-gradient solver is the torch engines'.
            case "--solver" => if (value == "cholesky") o else fail(s"--solver $value: MLlib solves by cholesky only")
            case "--cg-steps" => o.copy(cgSteps = num(flag, value, _.toInt)) // echoed only: MLlib has no CG
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
    if (o.test.isDefined && o.holdout > 0) fail("--test replaces the random holdout: leave --holdout at 0")
    if (o.seed < 0) fail("seed must not be negative")
    if (o.cgSteps < 1) fail("cg_steps must be at least 1")
    if (o.alpha.isNaN || o.alpha.isInfinite || o.alpha < 0) fail(s"alpha must be a finite number at least 0, not ${o.alpha}")
    if (o.topK < 0) fail(s"--top-k ${o.topK}: expected 0 (no recommend phase) or more")
    if (o.clip.exists { case (low, high) => !(low < high) }) fail("--clip: expected LOW,HIGH with LOW < HIGH")
    if (o.relevance.isDefined && o.topK == 0) fail("--relevance: ranking metrics need the recommend phase (--top-k K)")
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
