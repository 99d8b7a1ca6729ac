#!/usr/bin/env bash
# Start a single-node Slurm cluster on localhost (Debian's slurm-wlm + munge): munged,
# slurmctld and slurmd, proctrack/linuxproc, no cgroups. Needs root (apt-get, daemons).
#
#   bash tests/slurm/start_local_slurm.sh          # install if needed, start, wait for idle
#   bash tests/slurm/start_local_slurm.sh stop     # stop the three daemons
#
# Exit 0 when `sinfo` shows the node idle; non-zero with the reason otherwise. The state
# lives under ${SLURM_LOCAL_DIR:-/tmp/thermo-slurm} (config, logs, spool).
set -euo pipefail
DIR=${SLURM_LOCAL_DIR:-/tmp/thermo-slurm}
CONF=/etc/slurm/slurm.conf

stop() {
  for f in slurmd slurmctld munged; do
    if [[ -f $DIR/$f.pid ]]; then kill "$(cat "$DIR/$f.pid")" 2>/dev/null || true; fi
  done
}
if [[ ${1:-} == stop ]]; then stop; exit 0; fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq slurm-wlm munge >/dev/null
fi

mkdir -p "$DIR"/{spool/ctld,spool/d,log} /run/munge /var/log/munge /var/lib/munge
host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))

# munge: a key, then the daemon (as root here: --force accepts root-owned folders)
if [[ ! -s /etc/munge/munge.key ]]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chmod 400 /etc/munge/munge.key
if ! munge -n </dev/null >/dev/null 2>&1; then
  munged --force --pid-file="$DIR/munged.pid" --log-file="$DIR/log/munged.log" \
    --socket=/run/munge/munge.socket.2
fi

cat >"$CONF" <<CONF
ClusterName=thermo
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$DIR/spool/d
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF

if ! scontrol ping 2>/dev/null | grep -q UP; then
  slurmctld -c -f "$CONF"
fi
if ! pgrep -F "$DIR/slurmd.pid" >/dev/null 2>&1; then
  slurmd -f "$CONF"
fi
for _ in $(seq 60); do
  if sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    sinfo
    exit 0
  fi
  sleep 0.5
done
echo "start_local_slurm: the node did not become idle within 30 s; logs:" >&2
tail -n 20 "$DIR"/log/*.log >&2 || true
exit 1
