#!/bin/bash
# The first EMR step: fetch the suite's code from S3 onto the master node and build the Scala and
# Java jar with this cluster's own Spark jars, so the Scala version always matches.
#   setup.sh s3://bucket/prefix/code.zip /home/hadoop/als
set -euo pipefail
src="$1"; dest="$2"
rm -rf "$dest" && mkdir -p "$dest"
aws s3 cp --quiet "$src" "$dest/code.zip"
(cd "$dest" && python3 -m zipfile -e code.zip . && rm code.zip)
bash "$dest/scala/build.sh" /usr/lib/spark/jars
