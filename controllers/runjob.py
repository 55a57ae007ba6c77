# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import threading
import time

from odoo.addons.queue_job.controllers.main import RunJobController

from ..lib.times import to_datetime


def request_received_at():
    """The instant the current HTTP request reached this worker (naive UTC, microseconds).

    Odoo stamps each request's thread with ``perf_t0`` (``time.time()``) as
    it starts serving it; outside a request, now.
    """
    received = getattr(threading.current_thread(), "perf_t0", None) or time.time()
    return to_datetime(received)


class AsyncLabRunJobController(RunJobController):
    """Record when the runner's request to run a job reached its worker.

    queue_job's runner stores ``date_enqueued`` truncated to the second; this
    instant, to the microsecond, is the enqueue instant of the statistics
    (``models/queue_job.py``, ``ENQUEUED_AT``). It is written in the
    transaction that marks the job started, on the row ``runjob`` already
    holds ``FOR UPDATE``.
    """

    def _try_perform_job(self, env, job):
        env.cr.execute(
            "UPDATE queue_job SET async_lab_date_received = %s WHERE uuid = %s",
            [request_received_at(), job.uuid],
        )
        return super()._try_perform_job(env, job)
