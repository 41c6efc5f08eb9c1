#!/usr/bin/env bash
# A throw-away single-node SLURM cluster on this machine, for trying `hydra/launcher=slurm` and for
# MTLV's SLURM tests. Needs Debian/Ubuntu's packages: apt-get install slurm-wlm munge.
#
#   scripts/slurm_cluster.sh start <dir>   # munged + slurmctld + slurmd, state/logs under <dir>
#   export SLURM_CONF=<dir>/slurm.conf     # then sbatch/squeue/sinfo and MTLV use this cluster
#   scripts/slurm_cluster.sh stop <dir>    # kills the three daemons started from <dir>
#
# One node (this machine's hostname, all its CPUs and most of its memory), one partition `debug`,
# no accounting (sacct does not work; MTLV's launcher falls back to squeue), requeued jobs start again
# after ~5 s (cred_expire; SLURM's default is 120 s). Everything listens on
# 127.0.0.1 only, on free ports picked at start. Run it as the user who submits the jobs
# (slurmd can then run only that user's jobs, which is all a throw-away cluster needs).
set -euo pipefail

usage() { echo "usage: $0 start|stop <dir>" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
cmd=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)

stop() {
    local name pid
    for name in slurmd slurmctld munged; do
        pid=$(cat "$dir/$name.pid" 2>/dev/null || true)
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$dir/$name.pid"
    done
}

free_port() {  # a TCP port nothing listens on (a leftover cluster keeps its own ports)
    local port
    while :; do
        port=$((20000 + RANDOM % 20000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
    done
}

start() {
    for tool in munged slurmctld slurmd sinfo; do
        command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin:/sbin
        command -v "$tool" >/dev/null || { echo "error: $tool not found (apt-get install slurm-wlm munge)" >&2; exit 2; }
    done
    stop  # daemons left over from an earlier start in the same folder
    local user host cpus mem_mb ctld_port slurmd_port
    user=$(id -un)
    host=$(hostname -s)
    cpus=$(nproc)
    mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    ctld_port=$(free_port)
    slurmd_port=$(free_port)
    mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/munge"
    chmod 711 "$dir/munge"

    # munge: a fresh key and a private socket, so an installed system munged is left alone.
    [[ -s $dir/munge/munge.key ]] || { dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none; }
    chmod 400 "$dir/munge/munge.key"
    munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munge.seed"

    cat >"$dir/slurm.conf" <<EOF
ClusterName=mtlv-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
SrunPortRange=$((slurmd_port + 1))-$((slurmd_port + 40))
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=5
SlurmUser=$user
SlurmdUser=$user
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
MailProg=/bin/true
KillWait=30
NodeName=$host NodeAddr=127.0.0.1 NodeHostname=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF=$dir/slurm.conf
    slurmctld -i -f "$SLURM_CONF"   # -i: ignore state left by an earlier start
    slurmd -f "$SLURM_CONF"
    for _ in $(seq 120); do
        if sinfo -h -N -o '%t' 2>/dev/null | grep -qx idle; then
            echo "SLURM cluster up: export SLURM_CONF=$SLURM_CONF"
            return
        fi
        sleep 0.5
    done
    echo "error: the node did not become idle in 60 s; see $dir/log/" >&2
    sinfo -N >&2 || true
    tail -n 20 "$dir"/log/*.log >&2 || true
    stop
    exit 1
}

case $cmd in
    start) start ;;
    stop) stop ;;
    *) usage ;;
esac
