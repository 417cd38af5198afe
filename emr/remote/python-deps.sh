#!/bin/bash
# EMR bootstrap action on every node: the Python libraries the recommender's driver and its
# Python workers import (pyspark itself comes with the cluster's Spark); scipy for the SVD of a
# fractal expansion's base, on the driver.
set -ex
sudo python3 -m pip install --quiet "numpy>=1.26" "pandas>=2.2" "pyarrow>=15" "scipy>=1.11"
