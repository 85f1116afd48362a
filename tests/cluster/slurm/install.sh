#!/usr/bin/env bash
# Installs a one-node SLURM cluster's software from Debian (bookworm: Slurm 22.05), as root,
# only what is absent; running it again changes nothing. Nothing is started or configured
# here: tests/cluster/slurm/cluster.py writes private configs and starts the daemons for a test.
#
# Job status: the SLURM executor plugin asks `sacct` by default, and `sacct` needs accounting
# through slurmdbd and a MySQL-compatible database (MariaDB here). We install accounting
# because every production cluster has it and the test reads it (`sacct` keeps a durable
# record of each job: COMPLETED / CANCELLED / TIMEOUT, time limit, and the rule in the
# comment), proving that the jobs ran on SLURM and that the faults happened. The plugin's own
# polling uses `squeue` (profile layer workflow/profiles/slurm-test, with a long MinJobAge in
# the generated slurm.conf): with `sacct`, plugin 2.8 reads the state of a job cancelled
# with scancel, "CANCELLED by <uid>", as still running and Snakemake waits for it forever.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
    echo "tests/cluster/slurm/install.sh: run as root (apt-get install)" >&2
    exit 1
fi

# command -> Debian package that provides it
declare -A PROVIDER=(
    [munged]=munge
    [slurmctld]=slurmctld
    [slurmd]=slurmd
    [slurmdbd]=slurmdbd
    [sbatch]=slurm-client
    [sacct]=slurm-client
    [sacctmgr]=slurm-client
    [mariadbd]=mariadb-server
    [mariadb-install-db]=mariadb-server
    [mariadb]=mariadb-client
)

missing=()
for cmd in "${!PROVIDER[@]}"; do
    if ! PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1; then
        missing+=("${PROVIDER[$cmd]}")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "tests/cluster/slurm/install.sh: SLURM, munge and MariaDB already installed"
    exit 0
fi
# de-duplicate, stable order
mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)

# Package scripts must not start daemons with Debian's default configs (the test starts its
# own with private configs and ports): a policy-rc.d that refuses, unless one is in place.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    added_policy=1
fi
cleanup() { if [[ $added_policy -eq 1 ]]; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"
echo "tests/cluster/slurm/install.sh: installed ${packages[*]}"
