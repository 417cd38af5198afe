package als

import java.time.Instant
import java.time.temporal.ChronoUnit

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

  /** `phase` for the Java recommender: the same markers and the same clock. */
  def time[T](name: String, body: java.util.function.Supplier[T]): T = phase(name)(body.get())
}
