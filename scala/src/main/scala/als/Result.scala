package als

/** The ALS_RESULT line (schema 2: recommender/result.schema.json). */
object Result {
  val Prefix = "ALS_RESULT "

  sealed trait Json
  final case class JStr(s: String) extends Json
  final case class JNum(d: Double) extends Json
  final case class JInt(l: Long) extends Json
  final case class JBool(b: Boolean) extends Json
  case object JNull extends Json
  final case class JArr(items: Seq[Json]) extends Json
  final case class JObj(fields: Seq[(String, Json)]) extends Json

  def opt(d: Option[Double]): Json = d.map(x => JNum(x): Json).getOrElse(JNull)

  private def quote(s: String): String = {
    val sb = new StringBuilder("\"")
    s.foreach {
      case '"' => sb.append("\\\"")
      case '\\' => sb.append("\\\\")
      case '\n' => sb.append("\\n")
      case '\r' => sb.append("\\r")
      case '\t' => sb.append("\\t")
      case c if c < ' ' || c == '\u0085' || c == '\u2028' || c == '\u2029' => sb.append(f"\\u${c.toInt}%04x")
      case c => sb.append(c)
    }
    sb.append('"').toString
  }

  def render(j: Json): String = j match {
    case JStr(s) => quote(s)
    case JNum(d) =>
      require(!d.isNaN && !d.isInfinite, s"result value $d is not finite")
      d.toString
    case JInt(l) => l.toString
    case JBool(b) => b.toString
    case JNull => "null"
    case JArr(items) => items.map(render).mkString("[", ", ", "]")
    case JObj(fields) => fields.sortBy(_._1).map { case (k, v) => quote(k) + ": " + render(v) }.mkString("{", ", ", "}")
  }

  def line(obj: JObj): String = Prefix + render(obj)
}
