#!/usr/bin/env python3
# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""R1. Chaos: every job keeps its promise through kills and restarts.

Run it with the project's venv, after ``make bootstrap``::

    .venv/bin/python bench/chaos.py                 # 2000 jobs, 20 kills: about 6 minutes
    .venv/bin/python bench/chaos.py --jobs 300 --kills 4

1. A bench database on the server of ``.dev/odoo.conf`` (``--db``, default
   ``async_lab_bench_chaos``) with async_lab installed; one prefork server on
   it (``--workers`` HTTP workers, one cron worker, queue_job's runner).
2. Load: ``--jobs`` jobs through ``POST /async_lab/jobs``, a third each on the
   io (``io_sleep``), cpu (``cpu_python``) and serial (``io_sleep``) channels,
   while a client polls ``/async_lab/stats`` twice a second.
3. Faults, one after the other while the jobs run: ``--kills`` SIGKILLs of
   HTTP workers, then the job runner and the cron worker (SIGKILL), one
   PostgreSQL restart (only when the cluster is this checkout's own, in
   ``.dev/``: ``pg_ctl`` stop and start), then one full restart of Odoo (the
   master stopped with SIGTERM, then started again).
4. Pass: every job ends done, or failed with a reason, none left waiting
   (queue_job requeues a dead job within about a minute); each killed process
   has its respawn record, with reason "killed" and its role, and no other
   respawn claims a kill; the processes of the stopped server say
   "server_stop"; heartbeats resume after both restarts; the stats route
   answers again after each fault; the server log has no ``bad query`` and no
   ``could not serialize``.

It prints the recovery time of each kind of fault: until the respawn is on
the process map (kills), until every live process has written a heartbeat
again (restarts), until the stats route answers again, and until the last job
settled. ``tests/integration/test_chaos.py`` runs a smaller version of it.
"""

# A benchmark script: it prints its figures on stdout.
# pylint: disable=print-used

import argparse
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import requests

# The integration tests' server helpers (tests/integration/odoo_server.py), shared by the benchmarks.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from odoo_server import REPO, OdooServer, add_database_options, bench_database, connect, db_params, end_bench

# devenv (tools/), imported where used: this checkout's PostgreSQL cluster.
sys.path.insert(0, str(REPO / "tools"))

CHANNELS = "root:4,root.async_lab:4,root.async_lab.io:2,root.async_lab.cpu:1,root.async_lab.serial:1:sequential"
CPU_PYTHON_PER_SECOND = 10_000_000  # loop iterations, roughly, on a slow core


def loads(jobs, seconds):
    """(workload, params, channel, count): a third of ``jobs`` per channel, sized
    so that each channel has about ``seconds`` of work at its capacity."""
    count = [jobs // 3 + (1 if i < jobs % 3 else 0) for i in range(3)]
    per_job = [seconds * capacity / max(n, 1) for n, capacity in zip(count, (2, 1, 1), strict=True)]
    return [
        ("io_sleep", {"ms": max(1, int(per_job[0] * 1000))}, "root.async_lab.io", count[0]),
        ("cpu_python", {"n": max(1, int(per_job[1] * CPU_PYTHON_PER_SECOND))}, "root.async_lab.cpu", count[1]),
        ("io_sleep", {"ms": max(1, int(per_job[2] * 1000))}, "root.async_lab.serial", count[2]),
    ]


WAITING = ("wait_dependencies", "pending", "enqueued", "started")
WORKER_CLASS_ROLES = {"WorkerHTTP": "http", "WorkerCron": "cron", "WorkerJobRunner": "jobrunner"}
SEQUENTIAL = "root.async_lab.serial"


def utcnow():
    return datetime.now(timezone.utc).replace(tzinfo=None)


def own_cluster(params):
    """This checkout's PostgreSQL cluster (tools/devenv.py), if it serves ``params``; else None."""
    import devenv

    if not (devenv.DEV / "postgres" / "data" / "PG_VERSION").exists() and not list(
        Path("/var/tmp").glob("async_lab-*/postgres/data/PG_VERSION")
    ):
        return None
    try:
        cluster = devenv.OwnCluster()
    except devenv.SetupError:
        return None
    if str(cluster.port) != str(params.get("port")) or not (cluster.data / "PG_VERSION").exists():
        return None
    return cluster


class StatsPoller(threading.Thread):
    """GET /async_lab/stats twice a second; remember when it failed."""

    def __init__(self, url, cookies):
        super().__init__(daemon=True)
        self.url, self.cookies = url, cookies
        self.stop = threading.Event()
        self.calls = []  # (time, ok)

    def run(self):
        while not self.stop.wait(0.5):
            try:
                ok = requests.get(self.url, cookies=self.cookies, timeout=5).status_code == 200
            except requests.RequestException:
                ok = False
            self.calls.append((time.time(), ok))

    def first_ok_after(self, t):
        return next((at for at, ok in list(self.calls) if at >= t and ok), None)


class Chaos:
    def __init__(self, server, params, *, jobs, kills, cluster, seconds=150, pause=3.0, settle_timeout=300, out=print):
        self.server, self.params = server, params
        self.jobs, self.kills, self.cluster, self.seconds = jobs, kills, cluster, seconds
        self.pg_restart = None  # (start, end)
        self.requeued = []  # failed jobs of the sequential channel, requeued
        self.pause, self.settle_timeout, self.out = pause, settle_timeout, out
        self.conn = connect(params, server.db)
        self.burst_ids = []
        self.killed = []  # (pid, role, master_pid, at)
        self.recovery = {}  # fault kind -> [seconds]
        self.failures = []
        self.masters = []

    # -- database views ------------------------------------------------------------
    def query(self, sql, args=()):
        with self.conn.cursor() as cr:
            cr.execute(sql, args)
            return cr.fetchall()

    def alive(self, master_pid):
        """{pid: (role, last_seen)} of the alive rows under ``master_pid``."""
        rows = self.query(
            "SELECT pid, role, last_seen FROM async_lab_worker WHERE master_pid = %s AND state = 'alive'", [master_pid]
        )
        return {pid: (role, seen) for pid, role, seen in rows}

    def live_children(self, role):
        """PIDs of the master's live children of ``role``, from the log's announcements."""
        import psutil

        classes = self.server.workers_from_log()
        try:
            children = {c.pid for c in psutil.Process(self.server.pid).children() if c.status() != "zombie"}
        except psutil.Error:
            return []
        return sorted(pid for pid, cls in classes.items() if WORKER_CLASS_ROLES.get(cls) == role and pid in children)

    def wait(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.25)
        self.failures.append("timed out after %ss waiting for %s" % (timeout, what))
        return None

    def tree_complete(self):
        roles = {}
        for role, _seen in self.alive(self.server.pid).values():
            roles[role] = roles.get(role, 0) + 1
        return roles.get("http", 0) >= 1 and roles.get("cron") and roles.get("jobrunner") and roles.get("master")

    # -- load ------------------------------------------------------------------------
    def enqueue(self, session):
        for workload, params, channel, left in loads(self.jobs, self.seconds):
            while left:
                count = min(left, 1000)
                resp = session.post(
                    self.server.url + "/async_lab/jobs",
                    timeout=120,
                    json={"workload": workload, "params": params, "count": count, "channel": channel},
                )
                if resp.status_code != 202:
                    raise RuntimeError("POST /async_lab/jobs: %s %s" % (resp.status_code, resp.text[:300]))
                self.burst_ids.append(resp.json()["burst_id"])
                left -= count

    def settled(self, session):
        """All jobs ended? A job that the PostgreSQL restart interrupted fails
        (queue_job retries serialization failures only), and a sequential
        channel then holds its next jobs until someone requeues the failed
        one: do what an operator does in Job Queue (Requeue), and count it."""
        states = self.job_states()
        if not set(states) & set(WAITING):
            return states
        blocking = [
            job_id
            for (job_id,) in self.query(
                "SELECT id FROM queue_job WHERE async_lab_burst_id = ANY(%s) AND channel = %s AND state = 'failed' "
                "AND EXISTS (SELECT 1 FROM queue_job p WHERE p.async_lab_burst_id = ANY(%s) AND p.channel = %s "
                "AND p.state = 'pending')",
                [self.burst_ids, SEQUENTIAL, self.burst_ids, SEQUENTIAL],
            )
        ]
        if blocking:
            resp = session.post(
                self.server.url + "/web/dataset/call_kw",
                timeout=30,
                json={
                    "jsonrpc": "2.0",
                    "method": "call",
                    "params": {"model": "queue.job", "method": "requeue", "args": [blocking], "kwargs": {}},
                },
            )
            if resp.ok and "error" not in resp.json():
                self.requeued.extend(blocking)
        return None

    def job_states(self):
        return dict(
            self.query(
                "SELECT state, count(*) FROM queue_job WHERE async_lab_burst_id = ANY(%s) GROUP BY state",
                [self.burst_ids],
            )
        )

    # -- faults ----------------------------------------------------------------------
    def kill(self, role):
        pids = self.live_children(role)
        if not pids:
            self.failures.append("no live %s process to kill" % role)
            return
        pid = random.choice(pids)
        at = time.time()
        os.kill(pid, signal.SIGKILL)
        self.killed.append((pid, role, self.server.pid, at))

        def respawn_recorded():
            return self.query(
                "SELECT extract(epoch FROM create_date) FROM async_lab_respawn WHERE old_pid = %s AND master_pid = %s",
                [pid, self.server.pid],
            )

        found = self.wait(respawn_recorded, 60, "the respawn of %s %s" % (role, pid))
        if found:
            self.recovery.setdefault("SIGKILL %s" % role, []).append(time.time() - at)

    def heartbeats_after(self, t, what):
        """Every live process of the server has written a heartbeat after ``t``."""
        since = datetime.fromtimestamp(t, timezone.utc).replace(tzinfo=None)

        def resumed():
            rows = self.query(
                "SELECT pid, last_seen FROM async_lab_worker WHERE master_pid = %s AND "
                "state != 'gone' AND self_reported",
                [self.server.pid],
            )
            live = set(self.live_children("http")) | set(self.live_children("cron"))
            fresh = {pid for pid, seen in rows if seen and seen > since}
            return live and live <= fresh

        if self.wait(resumed, 60, "heartbeats after the %s" % what):
            self.recovery.setdefault("%s: heartbeats" % what, []).append(time.time() - t)

    def stats_after(self, poller, t, what):
        if self.wait(lambda: poller.first_ok_after(t), 60, "the stats route after the %s" % what):
            self.recovery.setdefault("%s: stats route" % what, []).append(poller.first_ok_after(t) - t)

    def restart_postgres(self, poller):
        if self.cluster is None:
            self.out("PostgreSQL restart skipped: the cluster is not this checkout's own (.dev/)")
            return
        t = time.time()
        self.cluster.stop()
        self.cluster.start()
        self.pg_restart = (t, time.time())
        self.recovery.setdefault("PostgreSQL restart: accepts connections", []).append(time.time() - t)
        self.conn = connect(self.params, self.server.db)
        self.heartbeats_after(time.time(), "PostgreSQL restart")
        self.stats_after(poller, t, "PostgreSQL restart")

    def restart_odoo(self, poller):
        old_master = self.server.pid
        old = {pid for pid, (role, _seen) in self.alive(old_master).items()}
        t = time.time()
        self.server.stop()
        self.server.start()
        self.masters.append(self.server.pid)
        self.recovery.setdefault("Odoo restart: serves /web/health", []).append(time.time() - t)
        # The old tree said why it went.
        rows = self.query(
            "SELECT pid, state, exit_reason FROM async_lab_worker WHERE pid = ANY(%s) AND "
            "(master_pid = %s OR pid = %s)",
            [list(old), old_master, old_master],
        )
        wrong = [r for r in rows if r[1:] != ("gone", "server_stop")]
        if wrong or len(rows) < len(old):
            self.failures.append("old tree after the graceful stop: %s (expected %d rows)" % (wrong or rows, len(old)))
        if self.wait(self.tree_complete, 90, "the new tree on the process map"):
            self.recovery.setdefault("Odoo restart: whole tree on the map", []).append(time.time() - t)
        self.heartbeats_after(t, "Odoo restart")
        self.stats_after(poller, t, "Odoo restart")

    # -- the run ---------------------------------------------------------------------
    def run(self):
        self.masters.append(self.server.pid)
        session = self.server.session()
        poller = StatsPoller(self.server.url + "/async_lab/stats", session.cookies.get_dict())
        self.wait(self.tree_complete, 90, "the whole tree on the process map")
        started = time.time()
        self.enqueue(session)
        self.out("enqueued %d jobs in %d bursts in %.1f s" % (self.jobs, len(self.burst_ids), time.time() - started))
        poller.start()
        try:
            for i in range(self.kills):
                self.kill("http")
                time.sleep(self.pause)
                self.out("kill %d/%d, jobs %s" % (i + 1, self.kills, self.job_states()))
            for role in ("jobrunner", "cron"):
                self.kill(role)
                time.sleep(self.pause)
            self.restart_postgres(poller)
            self.out("PostgreSQL restarted, jobs %s" % self.job_states())
            time.sleep(self.pause)
            self.restart_odoo(poller)
            self.out("Odoo restarted, jobs %s" % self.job_states())
            last_fault = time.time()
            states = self.wait(lambda: self.settled(session), self.settle_timeout, "every job to end")
            self.recovery["all jobs ended, after the last fault"] = [time.time() - last_fault]
            self.states = states or self.job_states()
            self.check()
        finally:
            poller.stop.set()
        self.total = time.time() - started
        return not self.failures

    def check(self):
        if set(self.states) - {"done", "failed"} or sum(self.states.values()) != self.jobs:
            self.failures.append("job states %s for %d jobs" % (self.states, self.jobs))
        reasonless = self.query(
            "SELECT count(*) FROM queue_job WHERE async_lab_burst_id = ANY(%s) AND "
            "state = 'failed' AND coalesce(exc_info, exc_message, '') = ''",
            [self.burst_ids],
        )[0][0]
        if reasonless:
            self.failures.append("%d failed jobs without a reason" % reasonless)
        # The respawn records match the kills, one for one.
        respawns = self.query(
            "SELECT old_pid, role, reason FROM async_lab_respawn WHERE master_pid = ANY(%s)", [self.masters]
        )
        by_old = {pid: (role, reason) for pid, role, reason in respawns}
        for pid, role, _master, _at in self.killed:
            if by_old.get(pid) != (role, "killed"):
                self.failures.append("killed %s %s: respawn record %s" % (role, pid, by_old.get(pid)))
        # Other vanished processes: only a cron worker that Odoo itself ends
        # when PostgreSQL goes away (WorkerCron's LISTEN connection breaks:
        # "Exception occurred, exiting"); it cannot write its note then.
        killed = {pid for pid, *_rest in self.killed}
        self.crashed = []
        for pid, role, reason, last_seen in self.query(
            "SELECT r.old_pid, r.role, r.reason, extract(epoch FROM w.last_seen) FROM async_lab_respawn r "
            "JOIN async_lab_worker w ON w.id = r.old_worker_id WHERE r.master_pid = ANY(%s) AND r.old_pid != ALL(%s)",
            [self.masters, list(killed) or [0]],
        ):
            on_pg_restart = self.pg_restart and self.pg_restart[0] - 10 <= last_seen <= self.pg_restart[1] + 10
            if role == "cron" and on_pg_restart and reason in ("killed", "crashed"):
                self.crashed.append((pid, role, reason))
            else:
                self.failures.append("respawn of %s %s (%s) that no fault explains" % (role, pid, reason))
        # Other components log their own failures while PostgreSQL is away;
        # the process map's statements never are "bad queries" or conflicts.
        log = self.server.log()
        for line in log.splitlines():
            ours = "bad query" in line and ("async_lab_worker" in line or "async_lab_respawn" in line)
            if ours or "could not serialize" in line or (" ERROR " in line and "odoo.addons.async_lab" in line):
                self.failures.append("server log: %s" % line[:300])

    def report(self):
        lines = ["%-46s %5s %8s %8s" % ("recovery after", "n", "median s", "max s")]
        for kind, values in self.recovery.items():
            lines.append("%-46s %5d %8.1f %8.1f" % (kind, len(values), statistics.median(values), max(values)))
        lines.append("jobs: %s of %d; %d kills; %.0f s in all" % (self.states, self.jobs, len(self.killed), self.total))
        if self.requeued:
            lines.append("failed jobs requeued to unblock the sequential channel: %d" % len(self.requeued))
        if self.crashed:
            lines.append("cron workers that Odoo ended on the PostgreSQL restart: %s" % self.crashed)
        lines.append("PASS" if not self.failures else "FAIL:\n  " + "\n  ".join(self.failures))
        return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add_database_options(parser, "async_lab_bench_chaos")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs of HTTP workers")
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=150, help="seconds of work per channel")
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between two faults")
    parser.add_argument("--keep-logs", action="store_true")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    params = db_params(args.conf)
    bench_database(args.conf, params, args.db, args.update)
    tmp = Path(tempfile.mkdtemp(prefix="async_lab_chaos."))
    server = OdooServer(
        args.conf,
        args.db,
        tmp,
        workers=args.workers,
        max_cron_threads=1,
        channels=CHANNELS,
        options={"log_level": "info"},
    )
    ok = False
    try:
        server.start()
        chaos = Chaos(
            server,
            params,
            jobs=args.jobs,
            kills=args.kills,
            cluster=own_cluster(params),
            seconds=args.seconds,
            pause=args.pause,
        )
        ok = chaos.run()
        print(chaos.report())
    finally:
        end_bench(
            [server], params, [args.db], tmp, ok=ok, drop=args.drop, keep=args.keep_logs, what="server log and config"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
