# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import importlib.util
from pathlib import Path

from odoo.tests import tagged

from .common import AsyncLabCase

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def load_migration(version, stage="pre"):
    path = MIGRATIONS / version / ("%s-migrate.py" % stage)
    spec = importlib.util.spec_from_file_location("async_lab_migration_%s" % version.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@tagged("at_install", "-post_install")
class TestMigrations(AsyncLabCase):
    def test_stored_jobs_take_the_renamed_methods(self):
        """17.0.1.4.0: jobs stored under the former method names run under the new ones."""
        burst = self.Burst.create({"workload": "noop", "job_count": 1})
        job = burst.with_delay()._job_task(0, 1, {}, workload="noop")
        experiment = self.env["async_lab.experiment"].create({"workload": "io_sleep", "ms": 1, "tasks": 1})
        probe = experiment.with_delay()._job_dispatch_probe(0)
        # As an older version stored them.
        renamed = {job.uuid: "_async_lab_task", probe.uuid: "_job_calibrate"}
        for uuid, old in renamed.items():
            self.env.cr.execute(
                """UPDATE queue_job SET method_name = %(old)s,
                          channel_method_name = regexp_replace(channel_method_name, '\\.[^.]+$', '.' || %(old)s),
                          func_string = regexp_replace(func_string, '\\)\\.[a-z_]+\\(', ').' || %(old)s || '(')
                    WHERE uuid = %(uuid)s""",
                {"old": old, "uuid": uuid},
            )
        self.env["queue.job"].invalidate_model()
        load_migration("17.0.1.4.0").migrate(self.env.cr, "17.0.1.3.0")
        self.env["queue.job"].invalidate_model()
        stored = self.env["queue.job"].search([("uuid", "in", list(renamed))])
        self.assertEqual(
            sorted(stored.mapped("channel_method_name")),
            ["<async_lab.burst>._job_task", "<async_lab.experiment>._job_dispatch_probe"],
        )
        self.assertEqual(sorted(stored.mapped("method_name")), ["_job_dispatch_probe", "_job_task"])
        for record in stored:
            self.assertIn(").%s(" % record.method_name, record.func_string)
            self.assertEqual(self.perform_like_runner(record.uuid).state, "done")
