// For people who use sbt. The suite itself builds with scala/build.sh, which takes the Scala
// compiler from the Spark it runs on, so the two can never disagree.
// Spark 4.x is built for Scala 2.13; Spark 3.5 (EMR 7) for 2.12 and 2.13.
name := "als-recommender"
version := "0.1.0"

val sparkVersion = sys.props.getOrElse("spark.version", "4.1.1")

scalaVersion := "2.13.17"
crossScalaVersions := Seq("2.12.18", "2.13.17")

libraryDependencies ++= Seq(
  "org.apache.spark" %% "spark-core" % sparkVersion % "provided",
  "org.apache.spark" %% "spark-sql" % sparkVersion % "provided",
  "org.apache.spark" %% "spark-mllib" % sparkVersion % "provided"
)
