#!/usr/bin/env bash
# A single-node Slurm cluster on localhost for depthlab's integration test.
#
#   tests/slurm/cluster.sh start    install munge + Slurm (Debian packages) if needed, write
#                                   /etc/slurm/{slurm,gres}.conf, start munged, slurmctld and
#                                   slurmd without systemd, wait until the node is idle
#   tests/slurm/cluster.sh stop     cancel this cluster's jobs, end exactly the daemons that
#                                   `start` started (by pid), remove the config files it
#                                   wrote, leave anything else alone
#   tests/slurm/cluster.sh status   print the daemons' state and `sinfo`
#
# `start` is idempotent: daemons it already started and that still run are kept (and
# restarted only if the configuration changed). Needs root (writes /etc, runs slurmd).
# State, logs and pid files live in $DEPTHLAB_SLURM_STATE (default /tmp/depthlab-slurm).
# Exit status 77 means "this machine cannot run the test cluster" (not root, no
# apt-get, packages not installable, ...): the test suite turns it into a skip.
#
# Facts behind the configuration (Debian 12, Slurm 22.05, no systemd, no cgroups):
#  * slurm.conf must be /etc/slurm/slurm.conf: the executor plugin's job step drops most
#    SLURM_* variables before `srun`, so a SLURM_CONF elsewhere is lost inside jobs.
#  * No slurmdbd, so `sacct` cannot answer: clients use `squeue` for status, and
#    MinJobAge keeps finished jobs visible to it (and to `scontrol show job`).
#  * proctrack/linuxproc + task/none work without cgroups; cons_tres with CR_CPU_Memory
#    and DefMemPerCPU let jobs share the node instead of each taking all of its memory.
#  * The node advertises a fixed size (config_overrides) big enough for the requests of
#    profiles/slurm as they are (e.g. 8 CPUs / 32 GB for a Gram), and two fake GPUs
#    (gres.conf File=/dev/null, /dev/zero) so `--gpus=1` is scheduled and sets
#    CUDA_VISIBLE_DEVICES.
set -euo pipefail

STATE=${DEPTHLAB_SLURM_STATE:-/tmp/depthlab-slurm}
CONF_DIR=/etc/slurm
MARKER="# written by depthlab tests/slurm/cluster.sh"
NODE_CPUS=${DEPTHLAB_SLURM_CPUS:-16}
NODE_MEM_MB=${DEPTHLAB_SLURM_MEM_MB:-131072}
WAIT_S=${DEPTHLAB_SLURM_WAIT_S:-90}

log() { echo "cluster.sh: $*" >&2; }
cannot() { log "cannot run a local Slurm cluster here: $*"; exit 77; }

node_name() { hostname -s; }

# pid recorded in $STATE/<name>.pid, if that process is alive and is <name>.
our_pid() {
    local name=$1 pid
    [[ -f $STATE/$name.pid ]] || return 1
    pid=$(<"$STATE/$name.pid")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/comm && $(<"/proc/$pid/comm") == "$name" ]] || return 1
    echo "$pid"
}

install_packages() {
    local need=()
    command -v munged >/dev/null || need+=(munge)
    command -v slurmctld >/dev/null || need+=(slurmctld)
    command -v slurmd >/dev/null || need+=(slurmd)
    command -v sbatch >/dev/null || need+=(slurm-client)
    ((${#need[@]})) || return 0
    command -v apt-get >/dev/null || cannot "no apt-get to install ${need[*]}"
    log "installing ${need[*]}"
    # Keep package scripts from starting services: this script starts its own daemons.
    local policy=/usr/sbin/policy-rc.d made_policy=
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
    fi
    local ok=1
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends "${need[@]}" >"$STATE/apt.log" 2>&1; then
        apt-get update -q >>"$STATE/apt.log" 2>&1 || true
        apt-get install -y -q --no-install-recommends "${need[@]}" >>"$STATE/apt.log" 2>&1 \
            || ok=
    fi
    [[ -n $made_policy ]] && rm -f "$policy"
    [[ -n $ok ]] || { tail -20 "$STATE/apt.log" >&2; cannot "apt-get install ${need[*]} failed"; }
}

write_config() {
    local node; node=$(node_name)
    local tmp=$STATE/slurm.conf.new
    cat >"$tmp" <<CONF
$MARKER; state in $STATE
ClusterName=depthlab
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pidfile
SlurmdPidFile=$STATE/slurmd.pidfile
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/jobcomp.log
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
ReturnToService=2
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
MinJobAge=600
SchedulerParameters=sched_interval=2
GresTypes=gpu
NodeName=$node NodeAddr=127.0.0.1 CPUs=$NODE_CPUS RealMemory=$NODE_MEM_MB Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=1000
CONF
    # Two fake GPUs (any existing device files do), so both training jobs of the test
    # config run side by side.
    printf '%s\nNodeName=%s Name=gpu File=/dev/null\nNodeName=%s Name=gpu File=/dev/zero\n' \
        "$MARKER" "$node" "$node" >"$STATE/gres.conf.new"
    mkdir -p "$CONF_DIR"
    local f changed=
    for f in slurm.conf gres.conf; do
        if [[ -e $CONF_DIR/$f ]] && ! grep -qF "$MARKER" "$CONF_DIR/$f"; then
            cannot "$CONF_DIR/$f exists and was not written by this script; not overwriting it"
        fi
        if ! cmp -s "$STATE/$f.new" "$CONF_DIR/$f"; then
            mv "$STATE/$f.new" "$CONF_DIR/$f"
            changed=1
        else
            rm -f "$STATE/$f.new"
        fi
    done
    [[ -z $changed ]]  # status 1: the configuration changed
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munged() {
    if munge_works; then
        if our_pid munged >/dev/null; then
            log "munged already running (ours)"
        else
            log "using the munged that is already running (not ours: stop leaves it)"
        fi
        return 0
    fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        mkdir -p /etc/munge
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile=/etc/munge/munge.key
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        fi
    fi
    chown -R munge:munge /etc/munge && chmod 700 /etc/munge && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    chmod 755 /run/munge
    chmod 700 /var/lib/munge /var/log/munge
    # setpriv execs (no fork), setsid too (a background job is no group leader): $! is munged.
    setsid setpriv --reuid=munge --regid=munge --init-groups \
        /usr/sbin/munged --foreground --force >"$STATE/munged.out" 2>&1 </dev/null &
    echo $! >"$STATE/munged.pid"
    local i pid=$!
    for ((i = 0; i < 50; i++)); do
        munge_works && return 0
        [[ -d /proc/$pid ]] || { cat "$STATE/munged.out" >&2; cannot "munged exited"; }
        sleep 0.2
    done
    cannot "munged does not answer"
}

start_daemon() {  # name, args...
    local name=$1; shift
    if our_pid "$name" >/dev/null; then
        log "$name already running (ours)"
        return 0
    fi
    if pgrep -x "$name" >/dev/null; then
        cannot "a $name not started by this script is running; stop it first"
    fi
    setsid "/usr/sbin/$name" -D "$@" >"$STATE/$name.out" 2>&1 </dev/null &
    local pid=$! i
    echo "$pid" >"$STATE/$name.pid"
    for ((i = 0; i < 10; i++)); do  # the pid is $name once setsid has exec'd it
        sleep 0.2
        [[ -d /proc/$pid ]] || break
    done
    our_pid "$name" >/dev/null || {
        tail -20 "$STATE/$name.out" "$STATE/$name.log" >&2 2>/dev/null || true
        cannot "$name exited at start"
    }
}

stop_daemon() {  # name
    local name=$1 pid i
    if pid=$(our_pid "$name"); then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            [[ -d /proc/$pid ]] || break
            sleep 0.2
        done
        if [[ -d /proc/$pid ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
        log "stopped $name (pid $pid)"
    fi
    rm -f "$STATE/$name.pid"
}

wait_idle() {
    local node state i
    node=$(node_name)
    for ((i = 0; i < WAIT_S * 2; i++)); do
        state=$(sinfo -h -n "$node" -o %T 2>/dev/null | head -1 || true)
        case $state in
            idle) log "node $node is idle"; return 0 ;;
            mixed | allocated | completing) log "node $node is $state (jobs running)"; return 0 ;;
            down* | drain* | fail*) scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 0.5
    done
    tail -20 "$STATE/slurmctld.log" "$STATE/slurmd.log" >&2 2>/dev/null || true
    log "node $node did not become idle (state: ${state:-none})"
    return 1
}

start() {
    [[ $(id -u) == 0 ]] || cannot "needs root (writes /etc/slurm, runs slurmd), running as $(id -un)"
    mkdir -p "$STATE/ctld" "$STATE/d"
    install_packages
    if ! write_config && { our_pid slurmctld >/dev/null || our_pid slurmd >/dev/null; }; then
        log "configuration changed: restarting slurmctld and slurmd"
        stop_daemon slurmd
        stop_daemon slurmctld
    fi
    start_munged
    start_daemon slurmctld
    local i
    for ((i = 0; i < 40; i++)); do
        scontrol ping 2>/dev/null | grep -q UP && break
        sleep 0.5
    done
    start_daemon slurmd -N "$(node_name)"
    wait_idle || { stop; exit 1; }
}

stop() {
    if our_pid slurmctld >/dev/null; then
        # Jobs of this cluster would outlive slurmd as orphaned slurmstepd processes.
        scancel --full --quiet --user=root 2>/dev/null || true
        sleep 1
    fi
    stop_daemon slurmd
    stop_daemon slurmctld
    stop_daemon munged
    # Without a controller, Slurm clients wait ~10 s on a slurm.conf before failing, and
    # the Slurm executor plugin runs `scontrol show config` whenever snakemake starts:
    # leaving the file would slow every later snakemake run on this machine.
    if ! our_pid slurmctld >/dev/null; then
        local f
        for f in slurm.conf gres.conf; do
            if grep -qsF "$MARKER" "$CONF_DIR/$f"; then rm -f "$CONF_DIR/$f"; fi
        done
    fi
}

status() {
    local name pid
    for name in munged slurmctld slurmd; do
        if pid=$(our_pid "$name"); then echo "$name: running (pid $pid)"; else echo "$name: not running (ours)"; fi
    done
    if our_pid slurmctld >/dev/null; then sinfo 2>/dev/null || true; fi
}

mkdir -p "$STATE"
case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
