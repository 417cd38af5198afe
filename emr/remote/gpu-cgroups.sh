#!/bin/bash
# EMR bootstrap action for GPU nodes: give YARN a cgroup v1 devices hierarchy it may manage,
# so that it can isolate GPUs per container (Amazon Linux 2023 mounts cgroup v2 only).
set -ex
sudo mkdir -p /spark-rapids-cgroup/devices
sudo mount -t cgroup -o devices cgroupv1-devices /spark-rapids-cgroup/devices
sudo chmod a+rwx -R /spark-rapids-cgroup
