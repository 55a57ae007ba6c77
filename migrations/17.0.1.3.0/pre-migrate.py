# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""17.0.1.3.0: the done-jobs index measures the stages from the enqueue
instant async_lab records (``queue_job.async_lab_date_received``), never below
zero.

Its former version, under another name, is dropped here; ``init`` creates
the new one (``queue_job.DONE_INDEX``) once the column exists.
"""


def migrate(cr, version):
    cr.execute("DROP INDEX IF EXISTS queue_job_async_lab_done_stages_index")
