# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo.tools import SQL

from .models.async_lab_metric import drop_rollup_tables
from .models.async_lab_metrics import drop_counters
from .models.async_lab_stats import drop_stats_functions
from .models.queue_job import DONE_INDEX, FAILED_INDEX


def uninstall_hook(env):
    """Drop what async_lab adds to the database outside its models.

    Odoo drops the columns of the fields async_lab adds to ``queue_job``, but
    not the two partial indexes its ``init`` creates there for the
    statistics (left behind, they would slow down every write of queue_job
    for nothing), nor the stats function, nor the metrics' counters (their
    trigger on queue_job would fail every job's end once their table is
    gone), nor the rollups' hour rows and span.
    """
    for index in (DONE_INDEX, FAILED_INDEX):
        env.cr.execute(SQL("DROP INDEX IF EXISTS %s", SQL.identifier(index)))
    drop_stats_functions(env.cr)
    drop_counters(env.cr)
    drop_rollup_tables(env.cr)
