package als

import scala.io.Source
import scala.util.Try

import Result._

/** The result line's `resources` for the Scala and Java recommenders: their JVM's peak resident set
  * size, as `peak_rss_bytes` (the process that wrote the line; recommender/memory.py names the keys).
  * Read as VmHWM from /proc/self/status, not getrusage's ru_maxrss, which a process started by
  * posix_spawn inherits from its parent; off Linux, where there is no /proc, the key is left out. */
object Memory {
  val PeakRss = "peak_rss_bytes"

  /** VmHWM of this JVM in bytes, or None where /proc/self/status cannot be read. */
  def peakRssBytes: Option[Long] = Try {
    val status = Source.fromFile("/proc/self/status")
    try status.getLines().collectFirst { case line if line.startsWith("VmHWM:") => line.split("\\s+")(1).toLong * 1024 }
    finally status.close()
  }.toOption.flatten

  def resources: JObj = JObj(peakRssBytes.map(bytes => PeakRss -> (JInt(bytes): Json)).toSeq)
}
