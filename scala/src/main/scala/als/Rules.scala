package als

/** The rules every implementation shares with recommender/data/formats.py and split.py:
  * the same line checks with the same messages, and the same seeded holdout hash. */
object Rules {
  val IntPattern = "^-?[0-9]+$"
  val FloatPattern = "^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"
  val Int32Max: Long = 2147483647L
  /** The largest rating magnitude: a square stays inside float32 (formats.RATING_LIMIT). */
  val RatingLimit: Double = 1e18
  private val Whitespace = " \t\r"

  private def strip(s: String): String = {
    var start = 0
    var end = s.length
    while (start < end && Whitespace.indexOf(s.charAt(start)) >= 0) start += 1
    while (end > start && Whitespace.indexOf(s.charAt(end - 1)) >= 0) end -= 1
    s.substring(start, end)
  }

  private def idProblem(raw: String, what: String): Option[String] = {
    val text = strip(raw)
    if (!text.matches(IntPattern)) Some(s"$what '$text' is not an integer")
    else {
      val value = BigInt(text)
      if (value < 0) Some(s"$what $value is negative")
      else if (value > Int32Max) Some(s"$what $value is out of range (ids must fit a 32-bit integer)")
      else None
    }
  }

  private def ratingProblem(raw: String): Option[String] = {
    val text = strip(raw)
    if (!text.matches(FloatPattern) || text.toDouble.isInfinite) Some(s"rating '$text' is not a finite number")
    else if (math.abs(text.toDouble) > RatingLimit) Some(s"rating '$text' is out of range (ratings must be at most 1e+18 in magnitude)")
    else None
  }

  /** A line that is ignored: empty or only characters up to U+0020 (Java's `String.trim` leaves nothing). */
  def isBlank(line: String): Boolean = line.forall(_ <= ' ')

  def repeatProblem(user: Int, item: Int, firstLine: Long): String =
    s"user $user rated movie $item again (first on line $firstLine)"

  /** Why a study-format line (user,item,rating) is invalid, or None. */
  def lineProblem(line: String): Option[String] = {
    val parts = line.split(",", -1)
    if (parts.length != 3) Some(s"expected 3 fields separated by ',', found ${parts.length}")
    else idProblem(parts(0), "user id").orElse(idProblem(parts(1), "movie id")).orElse(ratingProblem(parts(2)))
  }

  /** (user, item, rating) of a valid line, else None. */
  def parse(line: String): Option[(Int, Int, Double)] =
    if (lineProblem(line).isDefined) None
    else {
      val p = line.split(",", -1)
      Some((strip(p(0)).toInt, strip(p(1)).toInt, strip(p(2)).toDouble))
    }

  val P = 2147483647L
  val A = 1103515245L
  val B = 747796405L
  val C = 1664525L
  val D: Long = 2891336453L % P

  def holdoutHash(user: Long, item: Long, seed: Long): Long = {
    val h = (user * A % P + item * B % P + seed % P * C % P) % P
    (h * h % P * D % P + h) % P
  }

  def threshold(fraction: Double): Long = (fraction * P).toLong

  def holdoutSql(userCol: String, itemCol: String, seed: Long): String = {
    val u = s"CAST($userCol AS BIGINT)"
    val i = s"CAST($itemCol AS BIGINT)"
    val h = s"pmod(pmod($u * $A, $P) + pmod($i * $B, $P) + ${seed % P * C % P}, $P)"
    s"pmod(pmod(pmod($h * $h, $P) * $D, $P) + $h, $P)"
  }
}
