#!/bin/bash
# EMR bootstrap action on every node: the Python libraries the recommender's driver and its
# Python workers import (pyspark itself comes with the cluster's Spark).
set -ex
sudo python3 -m pip install --quiet "numpy>=1.26" "pandas>=2.2" "pyarrow>=15"
