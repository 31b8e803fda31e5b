#!/usr/bin/env bash
# Removes what a lab run killed half-way left behind (its teardown did not run): node systemds,
# network namespaces and links, cgroups, state. Only lab objects (ndlab-*, ndl*, nodediag-lab-*).
set -u
for p in $(pgrep -f '^/lib/systemd/systemd --system'); do
  grep -q 'nodediag-lab-' /proc/$p/cgroup 2>/dev/null && kill -9 "$p"
done
sleep 1
for ns in $(ip netns list | awk '/^ndlab-/ { print $1 }'); do ip netns del "$ns"; done
for l in $(ip -o link | awk -F': ' '$2 ~ /^ndl/ { print $2 }' | cut -d@ -f1); do ip link del "$l" 2>/dev/null; done
for m in $(awk '$3 ~ /cgroup/ { print $2 }' /proc/self/mounts); do
  for d in "$m"/nodediag-lab-*; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
done
swapoff /srv/nodediag-lab/*/swapfile 2>/dev/null
rm -rf /srv/nodediag-lab/*
echo "lab leftovers removed"
