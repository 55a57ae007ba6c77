# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Shared fixtures of the addon's Odoo tests."""

import traceback
import uuid as uuidlib
from datetime import timedelta

from odoo import fields
from odoo.tests import TransactionCase
from odoo.tools import SQL

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import Job


class AsyncLabCase(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Burst = cls.env["async_lab.burst"]
        cls.manager = cls.env["res.users"].create({
            "name": "Lab manager", "login": "async_lab_manager",
            "groups_id": [(6, 0, [cls.env.ref("async_lab.async_lab_group_manager").id])],
        })  # fmt: skip
        cls.user = cls.env["res.users"].create({
            "name": "Lab user", "login": "async_lab_user",
            "groups_id": [(6, 0, [cls.env.ref("async_lab.async_lab_group_user").id])],
        })  # fmt: skip

    def perform_like_runner(self, job_uuid):
        """One run of a stored job, as queue_job's /queue_job/runjob does it.

        (Without its commits: the test's transaction is rolled back.)
        """
        job = Job.load(self.env, job_uuid)
        job.set_started()
        job.store()
        try:
            with self.env.cr.savepoint():
                job.perform()
        except RetryableJobError as err:
            job.postpone(result=str(err), seconds=err.seconds)
            job.set_pending(reset_retry=False)
        except Exception as err:  # what the runner does with any other error
            job.set_failed(exc_name=type(err).__name__, exc_message=str(err),
                           exc_info=traceback.format_exc())  # fmt: skip
        else:
            job.set_done()
        job.store()
        if job.state == "done":
            self.env.flush_all()
            job.enqueue_waiting()  # release the jobs that depended on it
        record = self.env["queue.job"].search([("uuid", "=", job_uuid)])
        record.invalidate_recordset()
        return record

    def insert_job(self, channel, state="done", created=None, enqueued=None, started=None, done=None, **extra):
        """A hand-built queue_job row (SQL), for exact statistics."""
        cols = {
            "uuid": str(uuidlib.uuid4()), "state": state, "channel": channel, "priority": 10,
            "model_name": "async_lab.burst", "method_name": "_async_lab_task", "name": "test job",
            "date_created": created, "date_enqueued": enqueued, "date_started": started, "date_done": done,
            "retry": 0, "max_retries": 5, "user_id": self.env.uid, "company_id": self.env.company.id,
            **extra,
        }  # fmt: skip
        self.env.cr.execute(SQL(
            "INSERT INTO queue_job (%s) VALUES %s RETURNING id",
            SQL(", ").join(SQL.identifier(col) for col in cols), tuple(cols.values()),
        ))  # fmt: skip
        return self.env.cr.fetchone()[0]


def at(base, seconds):
    return base + timedelta(seconds=seconds)


def now_minute():
    return fields.Datetime.now().replace(second=0, microsecond=0)
