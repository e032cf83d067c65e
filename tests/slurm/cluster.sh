#!/usr/bin/env bash
# Writes the configuration of a one-node SLURM cluster on 127.0.0.1 into DIR: slurm.conf (free
# ports, state and logs under DIR, no cgroups, no accounting) and a fresh munge key.
# Usage: cluster.sh write-config DIR
set -euo pipefail
[ "${1:-}" = write-config ] && [ -n "${2:-}" ] || { echo "usage: $0 write-config DIR" >&2; exit 2; }
dir=$2
mkdir -p "$dir/state" "$dir/spool"
chmod 755 "$dir"
head -c 1024 /dev/urandom > "$dir/munge.key"
chmod 600 "$dir/munge.key"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
memory_mb=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2))
cat > "$dir/slurm.conf" << CONF
ClusterName=causalsweep-test
# slurmctld checks that it runs on the host named here; the address keeps everything on loopback.
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
CredType=cred/munge
# cred_expire also delays a requeued job's restart (default 120 s): short, so the test need not wait.
AuthInfo=socket=$dir/munge.sock,cred_expire=5
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
# No cgroups (containers, no systemd): track processes by /proc, no CPU binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=600
NodeName=cs-node NodeAddr=127.0.0.1 NodeHostname=$(hostname -s) CPUs=$(nproc) RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=cs-node Default=YES MaxTime=INFINITE State=UP
CONF
