#!/usr/bin/env bash
# Build scala/target/als-recommender.jar with the Scala compiler that ships inside the Spark it
# will run on (no sbt, no Maven), then javac for the Java classes. Rebuilds only when a source
# or the Spark jars changed. The jar records the Spark and Scala versions it was built for.
#
#   scala/build.sh [SPARK_JARS_DIR]
#
# SPARK_JARS_DIR: $SPARK_HOME/jars, /usr/lib/spark/jars on EMR, or pyspark's jars/ folder.
# Default: $SPARK_HOME/jars, else the jars/ of the pyspark that `python3` imports.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
jars="${1:-}"
if [ -z "$jars" ]; then
  if [ -n "${SPARK_HOME:-}" ] && [ -d "$SPARK_HOME/jars" ]; then
    jars="$SPARK_HOME/jars"
  else
    jars="$(${PYTHON:-python3} -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')"
  fi
fi
[ -d "$jars" ] || { echo "build.sh: no Spark jars folder at $jars" >&2; exit 2; }
compiler=$(ls "$jars"/scala-compiler-*.jar 2>/dev/null | head -1)
[ -n "$compiler" ] || { echo "build.sh: $jars has no scala-compiler-*.jar to build with" >&2; exit 2; }
core=$(ls "$jars"/spark-core_*.jar | head -1)
scala_version=$(basename "$compiler" .jar | sed 's/^scala-compiler-//')
spark_version=$(basename "$core" .jar | sed 's/^spark-core_[0-9.]*-//')

out="$here/target"
jar_file="$out/als-recommender.jar"
stamp_file="$out/build.stamp"
sources=$(find "$here/src/main" -name '*.scala' -o -name '*.java' | sort)
stamp=$( (echo "$jars $scala_version $spark_version"; cat $sources) | sha256sum | cut -d' ' -f1)
if [ -f "$jar_file" ] && [ "$(cat "$stamp_file" 2>/dev/null)" = "$stamp" ]; then
  echo "build.sh: $jar_file is up to date (Spark $spark_version, Scala $scala_version)"
  exit 0
fi

classes="$out/classes"
rm -rf "$classes" && mkdir -p "$classes"
classpath="$jars/*"
echo "build.sh: compiling with Scala $scala_version from $jars (Spark $spark_version)"
java -cp "$jars/scala-compiler-$scala_version.jar:$jars/scala-library-$scala_version.jar:$jars/scala-reflect-$scala_version.jar" \
  scala.tools.nsc.Main -nowarn -classpath "$classpath" -d "$classes" \
  $(find "$here/src/main" -name '*.scala' -o -name '*.java' | sort)
javac -nowarn -cp "$classpath:$classes" -d "$classes" \
  $(find "$here/src/main/java" -name '*.java' | sort) 2>&1 | grep -v '^Note:' || true
[ -f "$classes/als/RecommenderJava.class" ] || { echo "build.sh: javac failed" >&2; exit 1; }
printf 'spark.version=%s\nscala.version=%s\n' "$spark_version" "$scala_version" > "$classes/als-build.properties"
jar cf "$jar_file.tmp" -C "$classes" .
mv "$jar_file.tmp" "$jar_file"
echo "$stamp" > "$stamp_file"
echo "build.sh: built $jar_file ($(du -k "$jar_file" | cut -f1) KiB)"
