package als;

import java.io.InputStream;
import java.util.Properties;

/**
 * Refuses to run a jar built for another Scala binary version than the running Spark's, with a
 * clear message instead of a NoSuchMethodError deep inside Spark. Plain Java, so that it runs
 * before any Scala code that could itself fail to link.
 */
public final class VersionGuard {
    private VersionGuard() {}

    static String binary(String version) {
        String[] parts = version.split("\\.");
        return parts.length >= 2 ? parts[0] + "." + parts[1] : version;
    }

    public static void check() {
        Properties built = new Properties();
        try (InputStream in = VersionGuard.class.getResourceAsStream("/als-build.properties")) {
            if (in == null) throw new IllegalStateException("als-build.properties is missing from the jar");
            built.load(in);
        } catch (java.io.IOException e) {
            throw new IllegalStateException("cannot read als-build.properties: " + e.getMessage(), e);
        }
        String builtScala = built.getProperty("scala.version");
        String builtSpark = built.getProperty("spark.version");
        String runningScala = scala.util.Properties.versionNumberString();
        String runningSpark = org.apache.spark.package$.MODULE$.SPARK_VERSION();
        if (!binary(builtScala).equals(binary(runningScala))) {
            throw new IllegalStateException(String.format(
                "this jar was built for Scala %s (Spark %s) but runs on Scala %s (Spark %s): "
                + "rebuild it with scala/build.sh against this Spark's jars", builtScala, builtSpark,
                runningScala, runningSpark));
        }
        if (!binary(builtSpark).equals(binary(runningSpark))) {
            System.err.printf("warning: jar built against Spark %s, running on Spark %s%n", builtSpark, runningSpark);
        }
    }
}
