#!/bin/sh
# Builds this project's packset ps/ from the CSV named in project.env, signs it with
# keys/project.pem (a key pair made on the first run) and verifies it with the public key.
# Runs $ANNPACK, else the annpack on PATH. Run it again after changing the data.
set -eu
cd "$(dirname "$0")"
. ./project.env
A=${ANNPACK:-annpack}
"$A" packset build-base --input "$INPUT" --packset ps --text-col "$TEXT_COL" \
    --id-col "$ID_COL" --lists "$LISTS" --seed "$SEED" --force > /dev/null
if [ ! -f keys/project.pem ]; then
    mkdir -p keys
    chmod 700 keys
    "$A" keygen --out keys/project > /dev/null
fi
"$A" sign ps --key keys/project.pem > /dev/null
"$A" verify ps --pubkey keys/project.pub --deep > /dev/null
echo "built, signed and verified ps/ (public key keys/project.pub)"
