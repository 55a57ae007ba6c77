# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import os
import time
from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.service import db as service_db
from odoo.service import server as odoo_server
from odoo.tests import BaseCase, TransactionCase, new_test_user, tagged
from odoo.tools import config, mute_logger

from odoo.addons.queue_job.jobrunner.runner import PG_ADVISORY_LOCK_ID

from .. import process_tracker
from ..lib import deployment
from ..models import async_lab_deployment
from .common import TEST_COMMAND, UnsafeTestRun, assert_doctests, refuse_unsafe_test_run


class TestDeploymentLib(BaseCase):
    """lib/deployment.py: which databases the runner and the HTTP side serve."""

    def test_doctests(self):
        assert_doctests(self, deployment, more_than=10)


@tagged("at_install", "-post_install")
class TestDeploymentBanners(TransactionCase):
    """The dashboard names what keeps this database's jobs pending, or reaches other databases."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Deployment = cls.env["async_lab.deployment"]
        cls.db = cls.env.cr.dbname

    def setUp(self):
        super().setUp()
        async_lab_deployment._runner_dbs_cache.clear()
        self.addCleanup(async_lab_deployment._runner_dbs_cache.clear)
        # No runner of this test process (pytest-odoo's server starts one), none serving this database.
        self.startPatcher(patch.object(async_lab_deployment, "own_runner_started", return_value=None))
        self.lock_patcher = patch.object(type(self.Deployment), "_runner_lock_held", return_value=False)
        self.lock_held = self.startPatcher(self.lock_patcher)

    def alive_runner(self, started_ago):
        """A job runner process row, alive, started ``started_ago`` seconds ago."""
        started = fields.Datetime.now() - timedelta(seconds=started_ago)
        self.env.cr.execute(
            """INSERT INTO async_lab_worker (name, host, pid, master_pid, role, state, create_time,
                                             started_at, last_seen)
               VALUES ('elsewhere:777', 'elsewhere', 777, 700, 'jobrunner', 'alive', 1.0, %s, %s)""",
            [started, fields.Datetime.now()],
        )
        return {"alive": True, "pid": 777, "pids": [777]}

    def queue_job_installed(self, ago):
        self.env.cr.execute(
            "UPDATE ir_module_module SET write_date = %s WHERE name = 'queue_job'",
            [fields.Datetime.now() - timedelta(seconds=ago)],
        )

    def codes(self, runner):
        return [banner["code"] for banner in self.Deployment._banners(runner)]

    def test_runner_started_before_the_install(self):
        runner = self.alive_runner(started_ago=600)
        self.queue_job_installed(ago=60)
        (banner,) = self.Deployment._banners(runner)
        self.assertEqual(banner["code"], "runner_before_install")
        self.assertIn("restart", banner["message"])
        self.assertNotIn("server_wide_modules", banner["message"])

    def test_runner_serving_this_database_holds_its_lock(self):
        runner = self.alive_runner(started_ago=600)
        self.queue_job_installed(ago=60)
        self.lock_held.return_value = True
        self.assertEqual(self.codes(runner), [])
        self.lock_patcher.stop()
        # The runner's advisory lock in this database, as queue_job takes it (unless
        # a real runner holds it already: pytest-odoo's server runs one).
        self.env.cr.execute("SELECT pg_try_advisory_lock(%s)", [PG_ADVISORY_LOCK_ID])
        taken = self.env.cr.fetchone()[0]
        try:
            self.assertTrue(self.Deployment._runner_lock_held())
        finally:
            if taken:
                self.env.cr.execute("SELECT pg_advisory_unlock(%s)", [PG_ADVISORY_LOCK_ID])

    def test_this_servers_own_runner_counts_when_unseen(self):
        # A runner that started before async_lab was installed never reports itself.
        self.queue_job_installed(ago=60)
        unseen = {"alive": False, "pid": None, "pids": []}
        with patch.object(async_lab_deployment, "own_runner_started", return_value=time.time() - 600):
            self.assertEqual(self.codes(unseen), ["runner_before_install"])

    def test_runner_that_db_name_keeps_away(self):
        runner = self.alive_runner(started_ago=600)
        self.queue_job_installed(ago=6000)
        with patch.dict(config.options, {"db_name": "some_other_db"}):
            self.assertEqual(self.codes(runner), ["runner_db_name"])

    def test_runner_not_serving_and_runner_just_started(self):
        self.queue_job_installed(ago=6000)
        self.assertEqual(self.codes(self.alive_runner(started_ago=600)), ["runner_not_serving"])
        self.env.cr.execute("DELETE FROM async_lab_worker WHERE pid = 777")
        self.assertEqual(self.codes(self.alive_runner(started_ago=2)), [], "a runner gets time to start")
        self.assertEqual(self.codes({"alive": False, "pid": None, "pids": []}), [], "no runner: another banner")

    def test_runner_serving_databases_outside_dbfilter(self):
        listed = [self.db, "shop", "crm"]
        with_queue_job = {self.db, "shop"}
        options = {"db_name": False, "dbfilter": "^%s$" % self.db, "server_wide_modules": "base,web,queue_job"}
        checked = patch.object(async_lab_deployment, "has_queue_job", side_effect=with_queue_job.__contains__)
        with (
            patch.dict(config.options, options),
            patch.object(service_db, "list_dbs", return_value=listed),
            checked as check,
        ):
            (banner,) = self.Deployment._banners({"alive": False})
            self.assertEqual(banner["code"], "runner_outside_dbfilter")
            self.assertIn("shop", banner["message"])
            self.assertNotIn("crm", banner["message"])
            self.assertIn("db_name = %s" % self.db, banner["message"])
            # Only the databases that dbfilter excludes are checked, and not at every refresh.
            self.assertEqual(sorted(c.args[0] for c in check.call_args_list), ["crm", "shop"])
            self.Deployment._banners({"alive": False})
            self.assertEqual(check.call_count, 2)
            # Other databases' names are for administrators only.
            lab_user = new_test_user(self.env, "lab_deploy_user", groups="async_lab.async_lab_group_user")
            (banner,) = self.Deployment.with_user(lab_user)._banners({"alive": False})
            self.assertNotIn("shop", banner["message"])
            self.assertIn("1 other database(s)", banner["message"])
        async_lab_deployment._runner_dbs_cache.clear()
        with (
            patch.dict(config.options, dict(options, db_name=self.db)),
            patch.object(service_db, "list_dbs", return_value=listed),
        ):
            self.assertEqual(self.codes({"alive": False}), [], "db_name keeps the runner here")
        async_lab_deployment._runner_dbs_cache.clear()
        with (
            patch.dict(config.options, dict(options, server_wide_modules="base,web")),
            patch.object(service_db, "list_dbs", return_value=listed),
        ):
            self.assertEqual(self.codes({"alive": False}), [], "no runner in this server")

    def test_has_queue_job_checks_the_database_itself(self):
        self.assertTrue(async_lab_deployment.has_queue_job(self.db))
        self.assertFalse(async_lab_deployment.has_queue_job("async_lab_no_such_database"))

    def test_dashboard_data_carries_the_banners(self):
        self.alive_runner(started_ago=600)
        self.queue_job_installed(ago=60)
        data = self.env["async_lab.dashboard"].get_data()
        self.assertIn("runner_before_install", [b["code"] for b in data["banners"]])


@tagged("post_install", "-at_install")
class TestTrackerAfterUninstall(TransactionCase):
    """A process whose database lost async_lab stops tracking it, quietly.

    (post_install: while the module installs, its registry is not ready and
    its state is "to install", so the tracker rightly waits.)
    """

    def setUp(self):
        super().setUp()
        # The tracker writes through registry.cursor(): make that this test's transaction.
        self.registry.enter_test_mode(self.cr)
        self.addCleanup(self.registry.leave_test_mode)
        self.tracker = process_tracker.ProcessTracker()
        self.tracker.dbs.add(self.cr.dbname)
        self.db = self.cr.dbname

    def my_rows(self):
        self.env.cr.execute("SELECT count(*) FROM async_lab_worker WHERE pid = %s", [os.getpid()])
        return self.env.cr.fetchone()[0]

    def set_state(self, state):
        self.env.cr.execute("UPDATE ir_module_module SET state = %s WHERE name = 'async_lab'", [state])

    def test_installed_database_gets_heartbeats(self):
        self.env.cr.execute("DELETE FROM async_lab_worker WHERE pid = %s", [os.getpid()])
        self.tracker.flush()
        self.assertEqual(self.my_rows(), 1)

    def test_uninstalled_database_is_detached_with_one_info_line(self):
        self.env.cr.execute("DELETE FROM async_lab_worker WHERE pid = %s", [os.getpid()])
        self.set_state("uninstalled")
        with patch.object(process_tracker, "_logger") as logger:
            self.tracker.flush()
            self.tracker.flush()
        logger.info.assert_called_once()
        self.assertIn("stops tracking", logger.info.call_args.args[0])
        logger.warning.assert_not_called()
        self.assertEqual(self.my_rows(), 0, "nothing written in a database without async_lab")
        self.assertNotIn(self.db, self.tracker.dbs)
        # A cron the stale registry still runs there does not track it again...
        self.tracker.count("crons", self.db)
        self.assertNotIn(self.db, self.tracker.dbs)
        # ...a registry that loads async_lab again does.
        self.set_state("installed")
        self.tracker.attach(self.db)
        self.tracker.flush()
        self.assertEqual(self.my_rows(), 1)

    def test_uninstall_in_progress_skips_the_beat(self):
        self.env.cr.execute("DELETE FROM async_lab_worker WHERE pid = %s", [os.getpid()])
        self.set_state("to remove")
        self.tracker.flush()
        self.assertEqual(self.my_rows(), 0)
        self.assertIn(self.db, self.tracker.dbs, "not detached while the uninstall may still fail")


class TestRefuseUnsafeTestRun(TransactionCase):
    """The tests refuse to run when their requests would reach another database."""

    def test_a_dbfilter_serving_another_database_stops_the_run(self):
        db = self.env.cr.dbname
        with (
            patch.dict(config.options, {"dbfilter": "^async_lab", "test_enable": True}),
            patch("odoo.addons.async_lab.tests.common.list_dbs", return_value=[db, "async_lab_prod"]),
        ):
            with self.assertRaises(UnsafeTestRun) as caught:
                refuse_unsafe_test_run()
        self.assertIn("async_lab_prod", str(caught.exception))
        self.assertIn(TEST_COMMAND, str(caught.exception))
        with (
            patch.dict(config.options, {"dbfilter": "^%s$" % db, "test_enable": True}),
            patch("odoo.addons.async_lab.tests.common.list_dbs", return_value=[db, "async_lab_prod"]),
        ):
            refuse_unsafe_test_run()

    def test_an_http_port_held_by_another_server_stops_the_run(self):
        db = self.env.cr.dbname
        busy = odoo_server.ThreadedServer.__new__(odoo_server.ThreadedServer)
        busy.httpd = None  # its HTTP thread could not bind the port
        with (
            patch.dict(config.options, {"dbfilter": "^%s$" % db, "test_enable": True}),
            patch.object(odoo_server, "server", busy),
            mute_logger("odoo.service.server"),
        ):
            with self.assertRaisesRegex(UnsafeTestRun, "not listening"):
                refuse_unsafe_test_run()
