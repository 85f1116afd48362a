"""A private one-node SLURM cluster on 127.0.0.1 for tests: munged, MariaDB, slurmdbd,
slurmctld and slurmd, each started in the foreground as a child in its own session, with every
config, socket, log, pid and database file under one state folder.

Nothing outside the state folder is read or written besides the installed programs (see
``install.sh``), so a test cluster never touches a system's own SLURM or MariaDB, and two
state folders never share ports (free ones are picked when the configs are written).

As a script, for trying the workflow by hand::

    python tests/cluster/slurm/cluster.py start /tmp/slurm-state   # prints: export SLURM_CONF=...
    python tests/cluster/slurm/cluster.py stop /tmp/slurm-state

Needs root: slurmd runs jobs as their submitting user and slurmctld/slurmdbd run as
``SlurmUser=root`` so that no account has to be created.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parent
# Programs the cluster needs, all installed by install.sh.
REQUIRED_PROGRAMS = (
    "munged", "mariadb-install-db", "mariadbd", "mariadb", "slurmdbd", "slurmctld", "slurmd",
    "sbatch", "sacct", "sacctmgr", "sinfo", "scontrol", "scancel", "squeue", "srun",
)
SBIN_DIRS = ("/usr/sbin", "/sbin")
# Where SLURM clients look for a config when SLURM_CONF is unset: the system's own file, then
# the copy a configless slurmd keeps for the processes of its jobs.
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
JOB_CONF_LINK = Path("/run/slurm/conf")


@dataclass(frozen=True)
class ClusterSettings:
    """What the workflow's profile layer must name, and the node's size.

    ``cpus`` and ``memory_mb`` are what the node advertises (SlurmdParameters=config_overrides
    makes slurmd trust them instead of probing the machine), so they bound how many jobs run at
    once; the jobs themselves are not confined (no cgroups in a container).
    """

    cluster: str = "pixelnerf"
    partition: str = "cpu"
    account: str = "pixelnerf"
    node: str = "node1"
    cpus: int = 2
    memory_mb: int = 8000
    # Seconds a finished job stays visible to squeue. The workflow's profile layer has the
    # executor plugin poll job states with squeue, which must still list a finished job at
    # the next poll: the plugin waits up to 180 s between polls, and falls back to sacct
    # when MinJobAge is under 3 x its first poll delay.
    min_job_age_s: int = 600
    # Seconds between SIGTERM and SIGKILL when a job is cancelled or hits its time limit.
    kill_wait_s: int = 5
    start_timeout_s: float = 120.0


def program(name: str) -> str:
    """Absolute path of ``name``, looking in sbin folders too (root's PATH may lack them)."""
    path = shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN_DIRS))
    if path is None:
        raise FileNotFoundError(
            f"{name} is not installed (run tests/cluster/slurm/install.sh as root)")
    return path


def missing_programs() -> list[str]:
    """Required programs that are not installed."""
    missing = []
    for name in REQUIRED_PROGRAMS:
        try:
            program(name)
        except FileNotFoundError:
            missing.append(name)
    return missing


def absence_verdict(missing: Sequence[str], environ: Mapping[str, str]) -> tuple[bool, str] | None:
    """What the SLURM test does where ``missing`` programs are absent: None when none is;
    else (whether it fails, its one-line reason). It fails under ``CI=true`` (the CI script
    installs the programs, so their absence there is a broken install) and is skipped
    elsewhere, never counted as passed."""
    if not missing:
        return None
    named = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
    reason = (f"SLURM test not run, {len(missing)} programs not installed ({named}): run "
              f"tests/cluster/slurm/install.sh as root, then pytest tests/cluster as root")
    return environ.get("CI", "").strip().lower() == "true", reason


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def render_template(name: str, values: Mapping[str, object]) -> str:
    """``TEMPLATE_DIR/name`` with every ``@KEY@`` replaced by ``values[KEY]``."""
    text = (TEMPLATE_DIR / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    leftover = re.search(r"@[A-Z_]+@", text)
    if leftover:
        raise ValueError(f"{name}: placeholder {leftover.group(0)} left unfilled")
    return text


def log_tail(log: Path, lines: int = 20) -> str:
    if not log.exists():
        return ""
    return "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


class Cluster:
    """The cluster whose state lives in ``state_dir`` (created on ``write_configs``)."""

    DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")

    def __init__(self, state_dir: Path, settings: ClusterSettings = ClusterSettings()) -> None:
        self.state = Path(state_dir).resolve()
        self.settings = settings
        self.etc = self.state / "etc"
        self.run = self.state / "run"
        self.logs = self.state / "log"
        self.slurm_conf = self.etc / "slurm.conf"
        self.munge_socket = self.run / "munge.socket"
        self.db_socket = self.run / "mariadb.sock"
        self.db_dir = self.state / "mariadb"
        # daemons started by this object (a later `stop` from another process uses pid files)
        self._children: dict[str, subprocess.Popen] = {}

    # ------------------------------------------------------------------ environment

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default os.environ) with SLURM_CONF pointing at this cluster."""
        env = dict(os.environ if base is None else base)
        env["SLURM_CONF"] = str(self.slurm_conf)
        env["PATH"] = os.pathsep.join([env.get("PATH", ""), *SBIN_DIRS])
        return env

    def command(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        """Run a SLURM client command against this cluster; its stdout."""
        done = subprocess.run(
            [program(args[0]), *args[1:]], env=self.env(), capture_output=True, text=True,
            timeout=timeout, check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}"
            )
        return done.stdout

    # ------------------------------------------------------------------ configs

    def write_configs(self) -> None:
        """A fresh state folder: configs from the templates, munge key, ports, folders."""
        if self.state.exists():
            raise FileExistsError(f"{self.state} exists; stop the cluster and remove it first")
        for folder in (self.etc, self.run, self.logs, self.state / "pids",
                       self.state / "ctld", self.state / "spool"):
            folder.mkdir(parents=True)
        # munged refuses a key that others can read, and a socket folder that others cannot
        # enter or that is writable by others.
        self.etc.chmod(0o700)
        for folder in (self.state, self.run):
            folder.chmod(0o755)
        key = self.etc / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)

        s = self.settings
        ctld_port, slurmd_port, dbd_port, db_port = free_ports(4)
        values = {
            "CLUSTER": s.cluster, "PARTITION": s.partition, "NODE": s.node,
            "CPUS": s.cpus, "MEMORY_MB": s.memory_mb, "MIN_JOB_AGE": s.min_job_age_s,
            "KILL_WAIT": s.kill_wait_s, "CTLD_PORT": ctld_port, "SLURMD_PORT": slurmd_port,
            "DBD_PORT": dbd_port, "DB_PORT": db_port, "STATE": self.state,
            "MUNGE_SOCKET": self.munge_socket, "DB_PASSWORD": secrets.token_hex(12),
        }
        self.slurm_conf.write_text(render_template("slurm.conf.template", values))
        dbd_conf = self.etc / "slurmdbd.conf"
        dbd_conf.write_text(render_template("slurmdbd.conf.template", values))
        dbd_conf.chmod(0o600)  # slurmdbd refuses a readable file (it holds the DB password)
        (self.state / "db.env").write_text(f"{db_port}\n{values['DB_PASSWORD']}\n")

    # ------------------------------------------------------------------ processes

    def _spawn(self, name: str, argv: Sequence[str]) -> None:
        log = self.logs / f"{name}.out"
        with open(log, "w") as out:
            process = subprocess.Popen(
                list(argv), env=self.env(), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        (self.state / "pids" / f"{name}.pid").write_text(str(process.pid))
        self._children[name] = process

    def _pid(self, name: str) -> int | None:
        pid_file = self.state / "pids" / f"{name}.pid"
        if not pid_file.exists():
            return None
        pid = int(pid_file.read_text())
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            return None
        # The pid may have been reused by another program since: only ours counts.
        return pid if os.path.basename(cmdline.decode(errors="replace")) == name else None

    def _wait(self, name: str, check: Callable[[], bool], what: str, log: Path) -> None:
        """Poll ``check`` until it holds; raise (with the tail of ``log``) when daemon
        ``name`` has died or the start timeout has passed."""
        timeout_s = self.settings.start_timeout_s
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if check():
                return
            if not self._alive(name):
                raise RuntimeError(f"{name} exited while starting{log_tail(log)}")
            time.sleep(0.5)
        raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s{log_tail(log)}")

    def _alive(self, name: str) -> bool:
        if name in self._children:
            return self._children[name].poll() is None
        pid = self._pid(name)
        if pid is None:
            return False
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] != "Z"

    def _succeeds(self, *args: str) -> bool:
        try:
            done = subprocess.run(
                [program(args[0]), *args[1:]], env=self.env(), capture_output=True,
                timeout=20, check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def _db_sql(self, sql: str) -> None:
        subprocess.run(
            [program("mariadb"), "--no-defaults", f"--socket={self.db_socket}", "-u", "root",
             "-e", sql],
            check=True, capture_output=True, timeout=60,
        )

    def _link_job_conf(self) -> None:
        """Make the config findable without SLURM_CONF, as slurmd does in configless mode.

        The executor plugin starts each job's command with a nested `srun` and removes every
        SLURM_* variable (SLURM_CONF too) from its environment first; on a production cluster
        that srun finds /etc/slurm/slurm.conf or slurmd's configless copy under /run/slurm/conf.
        Our slurmd reads a private file, so we point /run/slurm/conf at our config folder.
        """
        if SYSTEM_CONF.exists():
            raise RuntimeError(
                f"{SYSTEM_CONF} exists: jobs' nested srun would use that cluster's config, "
                "not the test cluster's (run the test on a machine without its own SLURM)"
            )
        if JOB_CONF_LINK.is_symlink() or JOB_CONF_LINK.exists():
            if not (JOB_CONF_LINK.is_symlink() and not JOB_CONF_LINK.exists()):
                raise RuntimeError(f"{JOB_CONF_LINK} is in use by another SLURM config")
            JOB_CONF_LINK.unlink()  # dangling: left by a test cluster that was not stopped
        JOB_CONF_LINK.parent.mkdir(parents=True, exist_ok=True)
        JOB_CONF_LINK.symlink_to(self.etc, target_is_directory=True)

    def _unlink_job_conf(self) -> None:
        if JOB_CONF_LINK.is_symlink() and Path(os.readlink(JOB_CONF_LINK)) == self.etc:
            JOB_CONF_LINK.unlink()

    def start(self) -> None:
        """Write configs, start every daemon, set up accounting, wait for an idle node."""
        self.write_configs()
        self._link_job_conf()
        timeout = self.settings.start_timeout_s
        try:
            self._start_munge()
            self._start_database(timeout)
            self._spawn("slurmdbd", [program("slurmdbd"), "-D"])
            self._wait("slurmdbd", lambda: self._succeeds("sacctmgr", "-n", "list", "cluster"),
                       "slurmdbd", self.logs / "slurmdbd.log")
            self._add_associations()
            self._spawn("slurmctld", [program("slurmctld"), "-D", "-i", "-f",
                                      str(self.slurm_conf)])
            self._wait("slurmctld", lambda: self._succeeds("scontrol", "ping"), "slurmctld",
                       self.logs / "slurmctld.log")
            self._spawn("slurmd", [program("slurmd"), "-D", "-N", self.settings.node,
                                   "-f", str(self.slurm_conf)])
            self._wait("slurmd", self.node_idle, f"node {self.settings.node} idle",
                       self.logs / "slurmd.log")
        except BaseException:
            self.stop()
            raise

    def _start_munge(self) -> None:
        self._spawn("munged", [
            program("munged"), "--foreground", f"--socket={self.munge_socket}",
            f"--key-file={self.etc / 'munge.key'}", f"--log-file={self.logs / 'munged.log'}",
            f"--pid-file={self.run / 'munged.pid'}", f"--seed-file={self.run / 'munged.seed'}",
        ])
        self._wait("munged", self.munge_socket.exists, "munged", self.logs / "munged.out")

    def _start_database(self, timeout: float) -> None:
        port, password = (self.state / "db.env").read_text().split()
        subprocess.run(
            [program("mariadb-install-db"), "--no-defaults", f"--datadir={self.db_dir}",
             "--user=root", "--auth-root-authentication-method=socket", "--skip-test-db"],
            check=True, capture_output=True, timeout=timeout,
        )
        self._spawn("mariadbd", [
            program("mariadbd"), "--no-defaults", f"--datadir={self.db_dir}", "--user=root",
            f"--socket={self.db_socket}", f"--port={port}", "--bind-address=127.0.0.1",
            "--skip-name-resolve", f"--pid-file={self.run / 'mariadbd.pid'}",
            f"--log-error={self.logs / 'mariadb.log'}", "--skip-log-bin",
            # small buffers: a test database of a few hundred rows
            "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=64M",
            "--innodb-lock-wait-timeout=900",  # slurmdbd's documented minimum
        ])
        self._wait(
            "mariadbd",
            lambda: self._succeeds("mariadb", "--no-defaults", f"--socket={self.db_socket}",
                                   "-u", "root", "-e", "SELECT 1"),
            "MariaDB", self.logs / "mariadb.log",
        )
        self._db_sql(
            f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{password}'; "
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
        )

    def _add_associations(self) -> None:
        s = self.settings
        self.command("sacctmgr", "-i", "add", "cluster", s.cluster)
        self.command("sacctmgr", "-i", "add", "account", s.account, f"Cluster={s.cluster}",
                     "Description=pixelnerf tests", "Organization=pixelnerf")
        user = os.environ.get("USER") or subprocess.run(
            ["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
        self.command("sacctmgr", "-i", "add", "user", user, f"Account={s.account}",
                     f"Cluster={s.cluster}")

    def node_idle(self) -> bool:
        try:
            state = self.command("sinfo", "-h", "-N", "-n", self.settings.node, "-o", "%T",
                                 check=False, timeout=20)
        except subprocess.TimeoutExpired:
            return False
        return state.strip() == "idle"

    def cancel_all_jobs(self, timeout_s: float = 30.0) -> None:
        """scancel every job of this cluster and wait until none is left: a job's processes
        live in their own sessions, so stopping slurmd alone would leave them running."""
        if not self._alive("slurmctld"):
            return
        self.command("scancel", f"--partition={self.settings.partition}", check=False)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.command("squeue", "-h", "-t", "PENDING,RUNNING,COMPLETING",
                                check=False).strip():
                return
            time.sleep(0.5)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Cancel leftover jobs, then SIGTERM every daemon this state folder started (newest
        first), SIGKILL after ``timeout_s``."""
        self.cancel_all_jobs(timeout_s)
        for name in reversed(self.DAEMONS):
            pid = self._pid(name)
            if pid is None:
                continue
            try:
                os.killpg(pid, signal.SIGTERM)  # its session: slurmstepd and jobs too
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + timeout_s
            while self._alive(name) and time.monotonic() < deadline:
                time.sleep(0.2)
            if self._alive(name):
                os.killpg(pid, signal.SIGKILL)
            if name in self._children:
                self._children.pop(name).wait(timeout=timeout_s)
        self._unlink_job_conf()

    # ------------------------------------------------------------------ accounting

    SACCT_FIELDS = ("JobIDRaw", "JobName", "State", "Timelimit", "Comment", "ExitCode",
                    "Start", "End", "Partition", "Account")

    def jobs(self) -> list[dict[str, str]]:
        """Every job (no steps) the accounting database holds, as sacct reports them."""
        text = self.command(
            "sacct", "-X", "-a", "--parsable2", "--noheader", "--starttime", "now-1days",
            "--format", ",".join(self.SACCT_FIELDS),
        )
        rows = csv.reader(io.StringIO(text), delimiter="|")
        return [dict(zip(self.SACCT_FIELDS, row, strict=True)) for row in rows if row]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop", "jobs"])
    parser.add_argument("state_dir", type=Path)
    args = parser.parse_args(argv)
    cluster = Cluster(args.state_dir)
    if args.action == "start":
        missing = missing_programs()
        if missing:
            print(f"missing: {' '.join(missing)} (run tests/cluster/slurm/install.sh as root)",
                  file=sys.stderr)
            return 1
        cluster.start()
        print(f"export SLURM_CONF={cluster.slurm_conf}")
    elif args.action == "stop":
        cluster.stop()
    else:
        for job in cluster.jobs():
            print(job)
    return 0


if __name__ == "__main__":
    sys.exit(main())
