#!/usr/bin/env bash
# A single-node SLURM with accounting on this Debian host, as root: for m9's tests (.ci/run starts it) and for
# trying hydra/launcher=slurm on one machine. Idempotent: packages are installed once, a running daemon is kept.
#
#   sudo bash launchers/slurm/start.sh     # install if missing, configure, start; prints the partition
#   sudo bash launchers/slurm/stop.sh      # stop the daemons (packages and state stay)
#
# Why each setting (measured on Debian 12, Slurm 22.05): there is no systemd in containers, so the daemons are
# started by hand; munged needs /run/munge owned by munge; the node line comes from `slurmd -C` with RealMemory at
# 95% (more than present drains the node); proctrack/linuxproc + task/none need no cgroups; accounting (slurmdbd +
# MariaDB) lets sacct report a job killed from outside, which submitit needs to notice it at all;
# EnforcePartLimits=ALL fails an impossible request at submission instead of leaving it pending forever.
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "launchers/slurm/start.sh: run as root" >&2; exit 1; }
LOG=/var/log/m9-slurm
mkdir -p "$LOG" /var/spool/slurmctld /var/spool/slurmd /run/slurm

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then echo "launchers/slurm/start.sh: $what did not come up; see $LOG" >&2; exit 1; fi
    sleep 0.5
  done
}

if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >"$LOG/apt.log" 2>&1
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client slurmdbd munge mariadb-server \
    >>"$LOG/apt.log" 2>&1
fi

# munge: the credential daemon every SLURM daemon and command talks through
mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
wait_for 20 munged munge -n

# MariaDB holding slurmdbd's accounting database
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
if ! pgrep -x mariadbd >/dev/null; then
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >"$LOG/mariadb-install.log" 2>&1
  (setsid mariadbd --user=mysql >"$LOG/mariadb.log" 2>&1 &)
fi
wait_for 60 mariadb mariadb -e "select 1"
mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
            CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'm9-local-slurm';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"

HOST=$(hostname -s)
NODE=$(slurmd -C | head -n1 | awk '{
  for (i = 1; i <= NF; i++) if ($i ~ /^RealMemory=/) { split($i, kv, "="); $i = "RealMemory=" int(kv[2] * 0.95) }
  print }')
CPUS=$(echo "$NODE" | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p')

cat >/etc/slurm/slurm.conf <<EOF
# written by m9's launchers/slurm/start.sh
ClusterName=m9
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
EnforcePartLimits=ALL
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# a job past its time limit is killed promptly (tests wait for it)
KillWait=5
OverTimeLimit=0
MinJobAge=300
$NODE State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

cat >/etc/slurm/slurmdbd.conf <<EOF
# written by m9's launchers/slurm/start.sh
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=m9-local-slurm
StorageLoc=slurm_acct_db
LogFile=$LOG/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
EOF
chmod 600 /etc/slurm/slurmdbd.conf

if ! pgrep -x slurmdbd >/dev/null; then slurmdbd; fi
wait_for 60 slurmdbd sacctmgr -n show cluster
sacctmgr -i -Q add cluster m9 >/dev/null 2>&1 || true
if ! pgrep -x slurmctld >/dev/null; then slurmctld; else scontrol reconfigure; fi
wait_for 60 slurmctld scontrol ping
pgrep -x slurmd >/dev/null || slurmd
wait_for 60 "node $HOST" sh -c "sinfo -h -n $HOST -o %T | grep -Eq '^(idle|mixed|allocated)'"
wait_for 60 accounting sacct -n -X -S now
echo "slurm: partition debug on $HOST ($CPUS CPUs), accounting on; logs in $LOG"
