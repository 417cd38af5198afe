#!/bin/bash
# One grid case as an EMR step: run the spark-submit command given after the S3 folder, then copy
# its stdout (with the ALS_RESULT line) and stderr (phase markers, spark-rapids explain) there.
#   run_case.sh s3://bucket/prefix/results/CASE/ROUND spark-submit ...
set -u
dest="$1"; shift
work=$(mktemp -d)
"$@" >"$work/stdout.txt" 2>"$work/stderr.txt"
rc=$?
echo "$rc" >"$work/exit_code.txt"
aws s3 cp --quiet "$work/stdout.txt" "$dest/stdout.txt"
aws s3 cp --quiet "$work/stderr.txt" "$dest/stderr.txt"
aws s3 cp --quiet "$work/exit_code.txt" "$dest/exit_code.txt"
tail -n 40 "$work/stderr.txt" >&2
exit "$rc"
