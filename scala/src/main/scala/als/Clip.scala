package als

import org.apache.spark.api.java.JavaPairRDD
import org.apache.spark.rdd.RDD
import org.apache.spark.sql.{DataFrame, functions => F}

/** `--clip LOW,HIGH`: held-out predictions clipped to the rating scale before RMSE and MAE, as
  * recommender/spark/{df,rdd}.py do (MLlib itself does not clip). With `--implicit` the model
  * predicts a preference, which has no rating scale: nothing is clipped and the result line's clip
  * is null, whatever `--clip` says. */
object Clip {
  def parse(text: String): Option[(Double, Double)] =
    if (text == "off") None
    else text.split(",", -1) match {
      case Array(low, high) => Some((low.trim.toDouble, high.trim.toDouble))
      case _ => throw new NumberFormatException(text)
    }

  /** The scale holdout predictions are clipped to: `--clip`, none in implicit mode. */
  def scale(o: Options): Option[(Double, Double)] = if (o.implicitPrefs) None else o.clip

  def df(predictions: DataFrame, o: Options): DataFrame = scale(o) match {
    case None => predictions
    case Some((low, high)) =>
      predictions.withColumn("prediction", F.least(F.greatest(F.col("prediction").cast("double"), F.lit(low)), F.lit(high)))
  }

  def rdd(predictions: RDD[((Int, Int), Double)], o: Options): RDD[((Int, Int), Double)] = scale(o) match {
    case None => predictions
    case Some((low, high)) => predictions.mapValues(p => math.min(math.max(p, low), high))
  }

  /** For the Java recommender. */
  def forJava(predictions: JavaPairRDD[(Integer, Integer), java.lang.Double], o: Options)
      : JavaPairRDD[(Integer, Integer), java.lang.Double] = scale(o) match {
    case None => predictions
    case Some((low, high)) => predictions.mapValues((p: java.lang.Double) => java.lang.Double.valueOf(math.min(math.max(p, low), high)))
  }

  def json(o: Options): Result.Json =
    scale(o).map { case (low, high) => Result.JArr(Seq(Result.JNum(low), Result.JNum(high))): Result.Json }.getOrElse(Result.JNull)
}
