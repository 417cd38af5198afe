package als;

import java.util.List;

import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.mllib.recommendation.ALS;
import org.apache.spark.mllib.recommendation.MatrixFactorizationModel;
import org.apache.spark.mllib.recommendation.Rating;
import org.apache.spark.sql.SparkSession;

import scala.Option;
import scala.Tuple2;
import scala.Tuple3;

/**
 * The RDD recommender in Java, the study's proposed next step: is Scala's speed the JVM's? Same
 * arguments, phases, checks and result line as the Python and Scala ones (RDD API only).
 *
 * With {@code --implicit} it trains MLlib's implicit-feedback ALS ({@code ALS.trainImplicit(..., alpha,
 * seed)}). That model predicts a preference p (1 where the rating r &gt; 0, else 0), not a rating, so
 * the training MSE and the holdout RMSE and MAE are measured against p, and holdout predictions are
 * not clipped ({@code Clip}). The recommend phase is the same in both modes: it ranks by the model's
 * scores.
 *
 *   spark-submit --class als.RecommenderJava als-recommender.jar ratings.csv --api rdd ...
 */
public final class RecommenderJava {
    private RecommenderJava() {}

    public static void main(String[] args) {
        VersionGuard.check();
        Options o = Options$.MODULE$.parse(args, "java");
        if (!o.api().equals("rdd")) {
            System.err.println("error: the Java recommender implements the rdd API only");
            System.exit(2);
        }
        SparkSession spark = SparkSession.builder().appName("als-java-rdd").getOrCreate();
        int code = 0;
        try {
            Options$.MODULE$.setCheckpointDir(spark.sparkContext(), o);
            Timer timer = new Timer();
            RecommenderScala.Outcome outcome = run(spark.sparkContext(), o, timer);
            System.out.println(Report$.MODULE$.line("java", o, spark.sparkContext(), timer, outcome));
        } catch (BadInput e) {
            System.err.println("error: " + e.getMessage());
            code = 2;
        } catch (Exception e) {
            if (!Loading$.MODULE$.singular(e)) throw e;
            System.err.println("error: " + Loading$.MODULE$.singularFit(o.input(), o));
            code = 2;
        } finally {
            spark.stop();
        }
        if (code != 0) System.exit(code);
    }

    private static JavaPairRDD<Tuple2<Integer, Integer>, Double> keyed(JavaRDD<Rating> rs) {
        return rs.mapToPair(r -> new Tuple2<>(new Tuple2<>(r.user(), r.product()), r.rating()));
    }

    /** (sum of squared errors, sum of absolute errors, pairs) over ratings with a prediction;
     * {@code implicitPrefs}: errors against each rating's preference instead of the rating. */
    private static Tuple3<Double, Double, Long> errors(JavaRDD<Rating> rs,
                                                      JavaPairRDD<Tuple2<Integer, Integer>, Double> preds,
                                                      boolean implicitPrefs) {
        JavaPairRDD<Tuple2<Integer, Integer>, Double> targets = implicitPrefs
            ? keyed(rs).mapValues(r -> RecommenderScala.preference(r)) : keyed(rs);
        return targets.join(preds).values()
            .map(p -> new Tuple3<>((p._1() - p._2()) * (p._1() - p._2()), Math.abs(p._1() - p._2()), 1L))
            .fold(new Tuple3<>(0.0, 0.0, 0L), (a, b) -> new Tuple3<>(a._1() + b._1(), a._2() + b._2(), a._3() + b._3()));
    }

    /** A ratings file: the fast pass, and the exact one where it found anything wrong; its good and bad
     * line counts are added to {@code goodBad} and its skipped-line examples to {@code skipped}. */
    private static JavaRDD<Rating> load(JavaSparkContext sc, String path, boolean skip, boolean uniquePairs,
                                        long[] goodBad, List<String> skipped) {
        Options$.MODULE$.checkSource(path);
        JavaRDD<Option<Rating>> parsed = sc.textFile(path).filter(line -> !Rules.isBlank(line)).map(line -> {
            Option<Tuple3<Object, Object, Object>> p = Rules.parse(line);
            if (p.isEmpty()) return Option.<Rating>empty();
            Tuple3<Object, Object, Object> t = p.get();
            return Option.apply(new Rating((Integer) t._1(), (Integer) t._2(), (Double) t._3()));
        }).cache();
        Tuple2<Long, Long> counts = parsed.map(r -> r.isDefined() ? new Tuple2<>(1L, 0L) : new Tuple2<>(0L, 1L))
            .fold(new Tuple2<>(0L, 0L), (a, b) -> new Tuple2<>(a._1() + b._1(), a._2() + b._2()));
        JavaRDD<Rating> fast = parsed.filter(Option::isDefined).map(Option::get);
        Loading.Loaded loaded = Loading$.MODULE$.settleRatings(
            sc.sc(), path, counts._1(), counts._2(), fast.rdd(), skip, uniquePairs);
        goodBad[0] += loaded.good();
        goodBad[1] += loaded.bad();
        skipped.addAll(loaded.skippedForJava());
        return loaded.exact().isDefined() ? loaded.exactForJava() : fast;
    }

    static RecommenderScala.Outcome run(SparkContext sparkContext, Options o, Timer timer) {
        JavaSparkContext sc = JavaSparkContext.fromSparkContext(sparkContext);
        int blocks = o.blocks().isDefined() ? (Integer) o.blocks().get() : sc.defaultParallelism();
        String path = o.input();
        long[] goodBad = new long[2];
        List<String> skipped = new java.util.ArrayList<>();
        Tuple2<JavaRDD<Rating>, JavaRDD<Rating>> loaded = timer.time("load", () -> new Tuple2<>(
            load(sc, path, o.skipBadRows(), o.uniquePairs(), goodBad, skipped),
            o.test().isDefined() ? load(sc, o.test().get(), o.skipBadRows(), o.uniquePairs(), goodBad, skipped)
                                 : null));
        JavaRDD<Rating> data = loaded._1();
        JavaRDD<Rating> test = loaded._2();

        long seed = o.seed();
        long cut = Rules.threshold(o.holdout());
        JavaRDD<Rating> train = cut > 0 ? data.filter(r -> Rules.holdoutHash(r.user(), r.product(), seed) >= cut) : data;
        // A predefined test file replaces the hashed holdout.
        JavaRDD<Rating> holdout = test != null ? test
            : cut > 0 ? data.filter(r -> Rules.holdoutHash(r.user(), r.product(), seed) < cut) : null;
        JavaRDD<Rating> ratings = test != null ? data.union(test) : data;
        if (train.isEmpty()) throw new BadInput(Loading$.MODULE$.noTrainingLeft(path, o.holdout()));

        MatrixFactorizationModel model = timer.time("fit", () -> {
            MatrixFactorizationModel m = o.implicitPrefs()
                ? ALS.trainImplicit(train.rdd(), o.rank(), o.iterations(), o.reg(), blocks, o.alpha(), o.seed())
                : ALS.train(train.rdd(), o.rank(), o.iterations(), o.reg(), blocks, o.seed());
            m.userFeatures().count();
            return m;
        });
        @SuppressWarnings("unchecked")
        JavaPairRDD<Tuple2<Integer, Integer>, Double>[] preds = new JavaPairRDD[2];
        long[] predCounts = new long[2];
        timer.time("predict", () -> {
            preds[0] = keyed(model.predict(train.mapToPair(r -> new Tuple2<Object, Object>(r.user(), r.product())).rdd()).toJavaRDD()).cache();
            predCounts[0] = preds[0].count();
            if (holdout != null) {
                preds[1] = keyed(model.predict(holdout.mapToPair(r -> new Tuple2<Object, Object>(r.user(), r.product())).rdd()).toJavaRDD()).cache();
                predCounts[1] = preds[1].count();
            }
            return null;
        });
        Double[] metrics = timer.time("evaluate", () -> {
            Tuple3<Double, Double, Long> t = errors(train, preds[0], o.implicitPrefs());
            Double rmse = null;
            Double mae = null;
            if (holdout != null) {
                Tuple3<Double, Double, Long> h = errors(holdout, Clip$.MODULE$.forJava(preds[1], o), o.implicitPrefs());
                if (h._3() > 0) {
                    rmse = Math.sqrt(h._1() / h._3());
                    mae = h._2() / h._3();
                }
            }
            return new Double[] {t._1() / t._3(), rmse, mae};
        });
        Recommend.Done recommended = o.topK() > 0
            ? Recommend$.MODULE$.rddForJava(model, train.rdd(), holdout != null ? holdout.rdd() : null, o, timer) : null;
        Result.JObj counts = Report$.MODULE$.counts(goodBad[0], goodBad[1],
            ratings.map(Rating::user).distinct().count(), ratings.map(Rating::product).distinct().count(),
            train.count(), holdout != null ? holdout.count() : 0L, predCounts[0], predCounts[1]);
        return RecommenderScala.outcomeForJava(counts, metrics[0], metrics[1], metrics[2], skipped, recommended);
    }
}
