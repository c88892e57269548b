#!/bin/sh
# Mounts ps/ read-only on mnt/ with annpackfs (signature and hashes checked with
# keys/project.pub), prints the best hits for a query as JSON, and unmounts.
# usage: ./search.sh [QUERY]   (default: QUERY in project.env; write a / as %2F)
set -eu
cd "$(dirname "$0")"
. ./project.env
A=${ANNPACK:-annpack}
q=${1:-$QUERY}
mkdir -p mnt
"$A" mount ps mnt -o pubkey=keys/project.pub
trap '"$A" umount mnt' EXIT
cat "mnt/query/$q?k=3"
echo
