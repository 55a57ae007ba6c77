# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import tempfile
from pathlib import Path

from odoo.tests import BaseCase

from ..lib import processes
from .common import assert_doctests


class TestProcesses(BaseCase):
    """Role detection, staleness and respawn pairing, without a database."""

    def test_doctests(self):
        assert_doctests(self, processes, more_than=10)

    def test_role_needs_evidence_not_pid_order(self):
        # The lowest PID is not "the master" and the highest not "the runner".
        names = ["MainThread"]
        self.assertIsNone(processes.detect_role(101, names, workers=2, master_pid=100))
        self.assertEqual(processes.detect_role(100, names, workers=2, master_pid=100), "master")
        self.assertEqual(
            processes.detect_role(99, ["Worker WorkerJobRunner (99) workthread"], workers=2, master_pid=100),
            "jobrunner",
        )

    def test_state_boundaries(self):
        now = 1000.0
        self.assertEqual(processes.state_for(now - processes.STALE_AFTER, now), "alive")
        self.assertEqual(processes.state_for(now - processes.STALE_AFTER - 0.1, now), "stale")
        self.assertEqual(processes.state_for(now - processes.GONE_AFTER - 0.1, now), "gone")
        # A live local process is never "gone" because it is quiet.
        self.assertEqual(processes.state_for(now - 10 * processes.GONE_AFTER, now, local_alive=True), "stale")

    def test_respawn_pairs_each_replacement_once(self):
        base = {"host": "h", "master_pid": 10, "role": "http"}
        gone = [dict(base, id=1, last_seen=100.0, create_time=1.0), dict(base, id=2, last_seen=101.0, create_time=2.0)]
        fresh = [dict(base, id=3, create_time=102.0), dict(base, id=4, create_time=103.0)]
        pairs = processes.pair_respawns(gone, fresh)
        self.assertEqual([(p.old_id, p.new_id) for p in pairs], [(1, 3), (2, 4)])
        # One replacement for two vanished workers: only the first is paired.
        self.assertEqual(len(processes.pair_respawns(gone, fresh[:1])), 1)
        # A replacement started long before the death is not one.
        old_fresh = [dict(base, id=5, create_time=50.0)]
        self.assertEqual(processes.pair_respawns(gone, old_fresh), [])

    def test_death_reason_prefers_the_note(self):
        row = {"exit_reason": "request_limit", "busy_since": 1.0, "limit_time_real": 10}
        self.assertEqual(processes.death_reason(row, 100.0), "request_limit")
        row["exit_reason"] = None
        self.assertEqual(processes.death_reason(row, 100.0), "time_limit_real")

    def test_thread_roles_of_a_threaded_server(self):
        # The threads of a real `workers = 0` server, one connection open.
        threads = [
            ("MainThread", None, "_MainThread"),
            ("odoo.service.httpd", None, "Thread"),
            ("Thread-1", None, "QueueJobRunnerThread"),
            ("async_lab heartbeat (13447)", None, "Thread"),
            ("odoo.service.cron.cron0", "cron", "Thread"),
            ("odoo.service.http.request.139622685333184", "http", "Thread"),
        ]
        roles = [processes.thread_role(*t) for t in threads]
        self.assertEqual(roles, [None, "http", "jobrunner", None, "cron", "http"])

    def test_cores_respect_the_cgroup_cpu_quota(self):
        with tempfile.TemporaryDirectory() as tmp:
            v2 = Path(tmp, "cpu.max")
            v2.write_text("200000 100000\n")
            files = {"cpu_max": str(v2), "cfs_quota_us": str(Path(tmp, "absent"))}
            self.assertEqual(processes.read_cgroup_cpu(files), {"cpu_max": "200000 100000\n"})
            self.assertEqual(processes.usable_cpus(16, **processes.read_cgroup_cpu(files)), 2)
            v2.write_text("max 100000\n")
            self.assertEqual(processes.usable_cpus(16, **processes.read_cgroup_cpu(files)), 16)
        # cgroup v1: a quota of 2.5 CPUs in 100 ms periods, under an affinity of 8 cores.
        self.assertEqual(processes.usable_cpus(8, cfs_quota_us="250000\n", cfs_period_us="100000\n"), 3)
        # The heartbeat's configuration carries it, so 2 × cores + 1 uses it.
        conf = processes.server_config({"workers": 4}, "root:1", processes.usable_cpus(8, cpu_max="100000 100000"))
        self.assertEqual(conf["cpu_count"], 1)
