# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""17.0.1.2.0: the done-jobs index of the statistics holds the stage durations.

Its former version, under another name, is dropped here; ``init`` creates
the new one (``queue_job.DONE_INDEX``).
"""


def migrate(cr, version):
    cr.execute("DROP INDEX IF EXISTS queue_job_async_lab_done_channel_date_done_index")
