# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Server controls, validated and recorded without signalling anything of this test's server.

The node here is this test process as its "master", with a child of its own
(``sleep``) as its "HTTP worker": a real process whose parent is the master,
which the checks at the moment of acting must still refuse (it does not run
the master's command line: not a forked Odoo worker). Actions on real prefork
servers are in tests/integration/test_control.py.
"""

import json
import os
import signal
import socket
import subprocess
from datetime import timedelta
from unittest.mock import patch

import psutil

from odoo.exceptions import AccessError, ValidationError
from odoo.tests import BaseCase, HttpCase, new_test_user, tagged
from odoo.tools import config, mute_logger

from ..lib import control
from ..lib.times import utcnow
from ..models.async_lab_control import MAX_EXTRA_PARAM, ControlError
from ..process_tracker import ProcessTracker
from .common import AsyncLabCase, assert_doctests, register_node


class TestControlLib(BaseCase):
    def test_doctests(self):
        assert_doctests(self, control, more_than=10)

    def test_only_forked_workers_act_for_their_node(self):
        registry = {"async_lab.control": None}
        worker = {"role": "http", "pid": 11, "master_pid": 10}
        self.assertTrue(ProcessTracker.acts_for_its_node(worker, registry))
        self.assertTrue(ProcessTracker.acts_for_its_node(dict(worker, role="cron"), registry))
        for other in (
            dict(worker, role="gevent"),  # an exec of the server, not a fork: not its master's command line
            dict(worker, role="jobrunner"),
            dict(worker, role="master", pid=10),
            dict(worker, role="threaded", pid=10),
            dict(worker, master_pid=None),
        ):
            with self.subTest(other=other):
                self.assertFalse(ProcessTracker.acts_for_its_node(other, registry))
        self.assertFalse(ProcessTracker.acts_for_its_node(worker, {}))  # a registry from before the upgrade


class TestControl(AsyncLabCase):
    """async_lab.control: who may ask, what is refused at once, what the node checks when acting."""

    def setUp(self):
        super().setUp()
        self.child = register_node(self.addCleanup, self.env)
        self.Control = self.env["async_lab.control"].with_user(self.manager)
        self.node = socket.gethostname()

    def test_request_is_recorded_pending_with_the_process_identity(self):
        rec = self.Control.create({"action": "kill", "pid": self.child.pid})
        self.assertEqual(rec.state, "pending")
        self.assertEqual((rec.node, rec.host, rec.master_pid), (self.node, socket.gethostname(), os.getpid()))
        self.assertAlmostEqual(rec.create_time, psutil.Process(self.child.pid).create_time(), places=2)
        self.assertEqual(rec.worker_id.pid, self.child.pid)
        self.assertEqual(rec.master_worker_id.pid, os.getpid())
        self.assertEqual(rec.user_id, self.manager)
        self.assertIn(rec, rec.worker_id.control_ids)
        self.assertIn(rec, rec.master_worker_id.node_control_ids)
        # Users read the log, as the API's status does.
        status = rec.with_user(self.user).api_status()
        self.assertEqual(
            (status["state"], status["pid"], status["requested_by"]), ("pending", self.child.pid, "async_lab_manager")
        )

    def test_node_action_status(self):
        rec = self.Control.create({"action": "add_http_worker", "node": self.node})
        status = rec.api_status()
        self.assertEqual((status["pid"], status["respawn"], status["node"]), (None, None, self.node))

    def test_only_fields_of_the_request_are_taken(self):
        rec = self.Control.create({"action": "recycle", "pid": self.child.pid, "host": "x", "state": "done"})
        self.assertEqual((rec.host, rec.state), (socket.gethostname(), "pending"))

    def test_users_may_not_ask(self):
        with self.assertRaises(AccessError):
            self.env["async_lab.control"].with_user(self.user).create({"action": "kill", "pid": self.child.pid})

    def test_refused_at_once(self):
        cases = [
            ({"action": "explode", "pid": self.child.pid}, ValidationError, "action must be one of"),
            ({"action": "kill"}, ValidationError, "pid is required"),
            ({"action": "kill", "pid": "12"}, ValidationError, "pid must be an integer"),
            ({"action": "kill", "pid": 2**70}, ValidationError, "pid must be a process id"),
            ({"action": "kill", "pid": -3}, ValidationError, "pid must be a process id"),
            ({"action": "kill", "pid": 1}, ControlError, "No live Odoo process 1"),
            ({"action": "kill", "pid": os.getpid()}, ControlError, "is a master"),
            ({"action": "kill", "pid": self.child.pid, "node": "nowhere"}, ControlError, "No live node nowhere"),
            ({"action": "add_http_worker"}, ValidationError, "node is required"),
            ({"action": "add_http_worker", "node": self.node, "pid": 3}, ValidationError, "takes a node, not a pid"),
        ]
        for vals, error, message in cases:
            with self.subTest(vals=vals), self.assertRaises(error) as caught:
                self.Control.create(vals)
            self.assertIn(message, str(caught.exception))
        self.assertFalse(self.env["async_lab.control"].search([]))

    def test_pid_outside_the_tree_is_unknown(self):
        stranger = subprocess.Popen(["sleep", "60"])  # alive, on this host, but not in the registry
        self.addCleanup(stranger.wait)
        self.addCleanup(stranger.kill)
        with self.assertRaises(ControlError) as caught:
            self.Control.create({"action": "kill", "pid": stranger.pid})
        self.assertEqual(caught.exception.http_status, 404)

    def test_only_http_and_cron_workers(self):
        self.env["async_lab.worker"].search([("pid", "=", self.child.pid)]).write({"role": "gevent"})
        with self.assertRaisesRegex(ControlError, "only HTTP and cron workers"):
            self.Control.create({"action": "recycle", "pid": self.child.pid})

    def test_http_worker_caps(self):
        self.env["ir.config_parameter"].sudo().set_param(MAX_EXTRA_PARAM, "1")
        # The registry's one HTTP worker, plus the additions on their way: 2 configured + 1 is the cap.
        self.Control.create({"action": "add_http_worker", "node": self.node})
        self.Control.create({"action": "add_http_worker", "node": self.node})
        with self.assertRaisesRegex(ControlError, "plus the 1 more allowed"):
            self.Control.create({"action": "add_http_worker", "node": self.node})
        self.Control.create({"action": "remove_http_worker", "node": self.node})  # 3 -> 2
        self.Control.create({"action": "remove_http_worker", "node": self.node})  # 2 -> 1
        with self.assertRaisesRegex(ControlError, "keeps at least one"):
            self.Control.create({"action": "remove_http_worker", "node": self.node})

    def test_threaded_node_has_no_workers_to_change(self):
        register_node(self.addCleanup, self.env, workers=0)
        with self.assertRaisesRegex(ControlError, "threaded mode"):
            self.Control.create({"action": "add_http_worker", "node": self.node})

    # -- carried out by the node ---------------------------------------------------------------
    def run_pending(self, acting_as_child_of=None):
        """Run the node's pending actions as one of its workers would; ``acting_as_child_of``
        makes this process pass for a child of that master."""
        Control = self.env["async_lab.control"].sudo()
        self.enterContext(mute_logger("odoo.addons.async_lab.models.async_lab_control"))  # the refusals
        if acting_as_child_of is None:
            return Control._run_pending(socket.gethostname(), os.getpid())
        acting = (acting_as_child_of, psutil.Process().cmdline())
        with patch.object(type(Control), "_acting_process", return_value=acting):
            return Control._run_pending(socket.gethostname(), os.getpid())

    def test_a_process_that_is_not_a_forked_worker_is_never_signalled(self):
        rec = self.Control.create({"action": "kill", "pid": self.child.pid})
        self.assertEqual(self.run_pending(acting_as_child_of=os.getpid()), 1)
        self.assertEqual(rec.state, "refused")
        self.assertIn("does not run the master's command line", rec.error)
        self.assertTrue(rec.done_at)
        self.assertEqual(rec.executed_by_pid, os.getpid())
        self.assertIsNone(self.child.poll(), "the child was signalled")

    def test_a_reused_pid_is_never_signalled(self):
        rec = self.Control.create({"action": "recycle", "pid": self.child.pid})
        rec.sudo().write({"create_time": rec.create_time - 50})  # the recorded process was another one
        self.run_pending(acting_as_child_of=os.getpid())
        self.assertEqual(rec.state, "refused")
        self.assertIn("the PID was reused", rec.error)
        self.assertIsNone(self.child.poll())

    def test_only_a_child_of_the_master_acts(self):
        rec = self.Control.create({"action": "add_http_worker", "node": self.node})
        self.run_pending()  # this process is the "master" itself, not one of its children
        self.assertEqual(rec.state, "refused")
        self.assertIn("is not the master of the process acting", rec.error)

    def test_a_master_that_restarted_is_not_the_recorded_one(self):
        rec = self.Control.create({"action": "add_http_worker", "node": self.node})
        rec.sudo().write({"master_create_time": rec.master_create_time - 50})
        self.run_pending(acting_as_child_of=os.getpid())
        self.assertIn("its PID was reused", rec.error)

    def test_another_node_leaves_the_row_alone(self):
        rec = self.Control.create({"action": "kill", "pid": self.child.pid})
        self.assertEqual(self.env["async_lab.control"].sudo()._run_pending(socket.gethostname(), os.getpid() + 1), 0)
        self.assertEqual(rec.state, "pending")

    def expire(self, rec, since):
        """Put ``rec``'s ``since`` (requested_at or started_at) past the timeout, then let any node claim."""
        rec.sudo().write({since: utcnow() - timedelta(seconds=control.PENDING_TIMEOUT + 5)})
        rec.flush_recordset()
        self.env["async_lab.control"].sudo()._claim_pending("another host", 1)
        rec.invalidate_recordset()

    def test_pending_too_long_expires(self):
        rec = self.Control.create({"action": "kill", "pid": self.child.pid})
        self.expire(rec, "requested_at")
        self.assertEqual(rec.state, "expired")
        self.assertIn("stopped reporting", rec.error)

    def test_population_counts_the_registry_and_the_requests_on_their_way(self):
        Control = self.env["async_lab.control"]
        host, master = socket.gethostname(), os.getpid()
        rec = self.Control.create({"action": "add_http_worker", "node": self.node})
        created = rec.master_create_time
        self.assertEqual(Control._population(host, master, created), 2)  # 1 in the registry, 1 pending
        rec.sudo().write({"state": "running"})
        self.assertEqual(Control._population(host, master, created), 2)
        # Done: its worker counts once it reports, not the record (a reload resets the master's count).
        rec.sudo().write({"state": "done"})
        self.assertEqual(Control._population(host, master, created), 1)
        rec.sudo().write({"state": "pending"})
        self.assertEqual(Control._population(host, master, created - 9), 1)  # another master's request

    def test_requested_at_is_the_databases_clock(self):
        rec = self.Control.create({"action": "kill", "pid": self.child.pid})
        requested_at = rec.requested_at
        self.env.cr.execute("SELECT now() AT TIME ZONE 'UTC'")
        self.assertEqual(requested_at.replace(microsecond=0), self.env.cr.fetchone()[0].replace(microsecond=0))

    # -- claim, act, record: a signal is sent once ------------------------------------------------
    def claim(self):
        return self.env["async_lab.control"].sudo()._claim_pending(socket.gethostname(), os.getpid())

    def test_a_claim_marks_running_and_takes_one_count_change_at_a_time(self):
        add = self.Control.create({"action": "add_http_worker", "node": self.node})
        remove = self.Control.create({"action": "remove_http_worker", "node": self.node})
        kill = self.Control.create({"action": "kill", "pid": self.child.pid})
        self.assertEqual(self.claim(), [add.id, kill.id])
        self.assertEqual((add.state, kill.state, remove.state), ("running", "running", "pending"))
        self.assertEqual(add.executed_by_pid, os.getpid())
        self.assertTrue(add.started_at)
        # The removal waits until the addition is recorded: it counts the workers after it.
        self.assertEqual(self.claim(), [])
        add.sudo()._record({"state": "done", "result": "test"})
        self.assertEqual(self.claim(), [remove.id])

    def test_another_master_with_the_same_host_and_pid_leaves_the_row_alone(self):
        rec = self.Control.create({"action": "kill", "pid": self.child.pid})
        Control = self.env["async_lab.control"].sudo()
        host, pid = socket.gethostname(), os.getpid()
        self.assertEqual(Control._claim_pending(host, pid, master_create_time=rec.master_create_time + 30), [])
        self.assertEqual(rec.state, "pending")
        self.assertEqual(Control._claim_pending(host, pid, master_create_time=rec.master_create_time), [rec.id])

    def test_an_outcome_is_recorded_once(self):
        rec = self.Control.create({"action": "kill", "pid": self.child.pid})
        self.assertFalse(rec.sudo()._record({"state": "done", "result": "not claimed"}))  # still pending
        self.claim()
        self.assertTrue(rec.sudo()._record({"state": "refused", "error": "first"}))
        self.assertFalse(rec.sudo()._record({"state": "done", "result": "second"}))
        self.assertEqual((rec.state, rec.error, rec.result), ("refused", "first", False))
        self.assertTrue(rec.done_at)

    def test_a_running_action_whose_process_died_ends_failed_not_signalled_again(self):
        rec = self.Control.create({"action": "kill", "pid": self.child.pid})
        self.claim()
        self.expire(rec, "started_at")
        self.assertEqual(rec.state, "failed")
        self.assertIn("Outcome unknown", rec.error)
        self.assertIsNone(self.child.poll())

    # -- the HTTP worker count, as the master's children show it at the moment of acting ---------
    def act_on_count(self, action, surely, at_most, kill_error=None):
        """Carry out ``action`` with the live count (surely, at_most), signals recorded, not sent."""
        Control = type(self.env["async_lab.control"])
        with patch.object(Control, "_population", return_value=2):  # the registry's count passes: the node decides
            rec = self.Control.create({"action": action, "node": self.node})
        sent = []

        def kill(pid, sig):
            sent.append((pid, sig))
            if kill_error and pid != os.getpid():
                raise kill_error

        victim = self.env["async_lab.worker"].search([("pid", "=", self.child.pid)])
        with (
            patch.object(Control, "_http_workers_now", return_value=(surely, at_most)),
            patch.object(Control, "_victim", return_value=victim),
            patch("odoo.addons.async_lab.models.async_lab_control.os.kill", side_effect=kill),
            patch.dict(config.options, {"workers": 2}),
        ):
            self.run_pending(acting_as_child_of=os.getpid())
        return rec, sent

    def test_an_addition_counts_the_live_workers_against_the_cap(self):
        self.env["ir.config_parameter"].sudo().set_param(MAX_EXTRA_PARAM, "2")
        rec, sent = self.act_on_count("add_http_worker", 2, 2)
        self.assertEqual(rec.state, "done", rec.error)
        self.assertEqual(sent, [(os.getpid(), signal.SIGTTIN)])
        self.assertIn("2 → 3 HTTP workers", rec.result)
        # The records allow one more (2 + 1 done); the master's children say 4 already
        # (one forked a moment ago, not in the registry yet, counts).
        rec, sent = self.act_on_count("add_http_worker", 3, 4)
        self.assertEqual(rec.state, "refused")
        self.assertIn("already runs 4 HTTP workers", rec.error)
        self.assertEqual(sent, [])

    def test_a_removal_keeps_one_worker_that_surely_runs(self):
        # The records say 2 configured; the master runs 1 (a reload reset it): refused.
        rec, sent = self.act_on_count("remove_http_worker", 1, 2)
        self.assertEqual(rec.state, "refused")
        self.assertIn("keeps at least one", rec.error)
        self.assertEqual(sent, [])
        rec, sent = self.act_on_count("remove_http_worker", 2, 2)
        self.assertEqual(rec.state, "done", rec.error)
        self.assertEqual(sent, [(os.getpid(), signal.SIGTTOU), (self.child.pid, signal.SIGINT)])
        self.assertEqual(rec.pid, self.child.pid)

    def test_a_removal_whose_worker_cannot_be_stopped_gives_the_master_its_count_back(self):
        rec, sent = self.act_on_count("remove_http_worker", 2, 2, kill_error=ProcessLookupError(3, "No such process"))
        self.assertEqual(rec.state, "failed")
        self.assertEqual(
            sent, [(os.getpid(), signal.SIGTTOU), (self.child.pid, signal.SIGINT), (os.getpid(), signal.SIGTTIN)]
        )

    def test_live_count_reads_the_masters_children_and_the_registry(self):
        rec = self.Control.create({"action": "add_http_worker", "node": self.node})
        master = control.describe(psutil.Process(os.getpid()))
        # The sleep child is in the registry as an HTTP worker, but does not run the master's code.
        self.assertEqual(rec.sudo()._http_workers_now(master, rec.sudo()._removed()), (0, 0))
        with patch.object(control, "runs_master_code", return_value=True):
            surely, at_most = rec.sudo()._http_workers_now(master, rec.sudo()._removed())
        self.assertGreaterEqual(surely, 1)
        self.assertGreaterEqual(at_most, surely)
        # A worker a removal told to stop no longer counts, however long it takes to finish.
        removal = self.Control.create({"action": "remove_http_worker", "node": self.node})
        removal.sudo().write(
            {
                "state": "done",
                "pid": self.child.pid,
                "create_time": psutil.Process(self.child.pid).create_time(),
                "done_at": utcnow() - timedelta(hours=1),
            }
        )
        with patch.object(control, "runs_master_code", return_value=True):
            self.assertEqual(rec.sudo()._http_workers_now(master, rec.sudo()._removed()), (surely - 1, at_most - 1))

    def test_a_row_no_longer_running_for_this_process_is_not_acted_on(self):
        rec = self.Control.create({"action": "kill", "pid": self.child.pid})
        self.claim()
        rec.sudo().write({"executed_by_pid": os.getpid() + 1})  # another process claimed it
        rec.flush_recordset()
        self.assertIsNone(rec.sudo()._act())
        self.assertFalse(rec.sudo()._record(None))
        self.assertEqual(rec.state, "running")
        self.assertIsNone(self.child.poll())


@tagged("post_install", "-at_install")
class TestControlApi(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        new_test_user(cls.env, "lab_ctl_user", groups="base.group_user,async_lab.async_lab_group_user")
        new_test_user(cls.env, "lab_ctl_manager", groups="base.group_user,async_lab.async_lab_group_manager")

    def setUp(self):
        super().setUp()
        self.child = register_node(self.addCleanup, self.env)

    def post(self, body):
        return self.url_open("/async_lab/control", data=json.dumps(body), headers={"Content-Type": "application/json"})

    def test_manager_gets_202_then_polls(self):
        self.authenticate("lab_ctl_manager", "lab_ctl_manager")
        resp = self.post({"action": "recycle", "pid": self.child.pid})
        self.assertEqual(resp.status_code, 202, resp.text)
        created = resp.json()
        self.assertEqual(created["status_url"], "/async_lab/control/%d" % created["id"])
        status = self.url_open(created["status_url"]).json()
        self.assertEqual((status["id"], status["state"], status["action"]), (created["id"], "pending", "recycle"))
        self.assertEqual(status["pid"], self.child.pid)

    def test_errors_say_what_is_wrong(self):
        self.authenticate("lab_ctl_manager", "lab_ctl_manager")
        cases = [
            ({"pid": 5}, 400, "action is required"),
            ({"action": "kill", "pid": 5, "signal": 9}, 400, "Unknown keys: signal"),
            ({"action": "kill", "pid": "5"}, 400, "pid must be an integer"),
            ({"action": "kill", "pid": 1}, 404, "No live Odoo process 1"),
            ({"action": "kill", "pid": os.getpid()}, 409, "is a master"),
            ({"action": "add_http_worker", "node": "nowhere"}, 404, "No live node nowhere"),
        ]
        for body, status, message in cases:
            with self.subTest(body=body):
                resp = self.post(body)
                self.assertEqual(resp.status_code, status, resp.text)
                self.assertIn(message, resp.json()["error"]["message"])
        self.assertEqual(self.url_open("/async_lab/control/999999").status_code, 404)
        self.assertEqual(self.url_open("/async_lab/control/99999999999").status_code, 404)
        # Every refused request that named an action is in the log, refused, and never carried out.
        refused = self.env["async_lab.control"].search([], order="id")
        self.assertEqual(
            [(r.action, r.pid, r.state, r.error.split(":")[0]) for r in refused],
            [
                ("kill", 5, "refused", "HTTP 400"),
                ("kill", 0, "refused", "HTTP 400"),
                ("kill", 1, "refused", "HTTP 404"),
                ("kill", os.getpid(), "refused", "HTTP 409"),
                ("add_http_worker", 0, "refused", "HTTP 404"),
            ],
        )
        self.assertEqual(refused.user_id.login, "lab_ctl_manager")
        self.assertFalse(refused.filtered("host"))

    def test_a_bursts_jobs_are_requeued_or_cancelled_at_once(self):
        burst = self.env["async_lab.burst"].create({"workload": "noop", "job_count": 3})
        burst.action_launch()
        jobs = burst.job_ids.sorted("id")
        jobs[0].state, jobs[1].state = "failed", "done"
        jobs.flush_recordset()
        self.authenticate("lab_ctl_manager", "lab_ctl_manager")
        resp = self.post({"action": "requeue_jobs", "burst_id": burst.id})
        self.assertEqual(resp.status_code, 202, resp.text)
        status = self.url_open(resp.json()["status_url"]).json()
        self.assertEqual(
            (status["state"], status["burst_id"], status["job_count"], status["host"]), ("done", burst.id, 1, None)
        )
        resp = self.post({"action": "cancel_jobs", "burst_id": burst.id})
        self.assertEqual(self.url_open(resp.json()["status_url"]).json()["job_count"], 2)
        jobs.invalidate_recordset()
        self.assertEqual(jobs.mapped("state"), ["cancelled", "done", "cancelled"])
        for body, status_code, message in (
            ({"action": "requeue_jobs"}, 400, "burst_id is required"),
            ({"action": "requeue_jobs", "burst_id": burst.id, "pid": 5}, 400, "takes a burst_id, not a node"),
            ({"action": "requeue_jobs", "burst_id": "1"}, 400, "burst_id must be"),
            ({"action": "requeue_jobs", "burst_id": 999999}, 404, "No burst 999999"),
            ({"action": "kill", "pid": self.child.pid, "burst_id": burst.id}, 400, "not a burst_id"),
        ):
            with self.subTest(body=body):
                resp = self.post(body)
                self.assertEqual(resp.status_code, status_code, resp.text)
                self.assertIn(message, resp.json()["error"]["message"])
        with self.assertRaisesRegex(ValidationError, "is done at once"):
            self.env["async_lab.control"].create({"action": "cancel_jobs"})

    def test_users_get_403(self):
        self.authenticate("lab_ctl_user", "lab_ctl_user")
        resp = self.post({"action": "kill", "pid": self.child.pid})
        self.assertEqual(resp.status_code, 403, resp.text)
        self.assertEqual(resp.json()["error"]["code"], "forbidden")
        refused = self.env["async_lab.control"].search([])
        self.assertEqual((refused.action, refused.pid, refused.state), ("kill", self.child.pid, "refused"))
        self.assertEqual(refused.user_id.login, "lab_ctl_user")
        self.assertIn("HTTP 403: This needs the", refused.error)
        self.assertIsNone(self.child.poll())
        # A body no manager could send either is still a 403, and not recorded (no known action).
        self.assertEqual(self.post({"action": {}, "node": "", "pid": 1}).status_code, 403)
        # Any string is kept as PostgreSQL can store it.
        self.assertEqual(self.post({"action": "kill", "node": "a\x00b", "pid": 1}).status_code, 403)
        refused = self.env["async_lab.control"].search([], order="id desc", limit=1)
        self.assertEqual((refused.action, refused.node), ("kill", "a\ufffdb"))

    def test_anonymous_gets_401(self):
        self.assertEqual(self.post({"action": "kill", "pid": self.child.pid}).status_code, 401)
