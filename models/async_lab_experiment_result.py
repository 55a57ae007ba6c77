# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models

from ..lib import theory


class AsyncLabExperimentResult(models.Model):
    """One strategy's measured run in an experiment."""

    _name = "async_lab.experiment.result"
    _description = "Experiment result"
    _order = "experiment_id, sequence, id"
    _rec_name = "strategy"

    experiment_id = fields.Many2one("async_lab.experiment", required=True, ondelete="cascade", index=True)
    sequence = fields.Integer(group_operator=False)
    strategy = fields.Selection([(s, s) for s in theory.STRATEGIES], required=True)
    kind = fields.Char()
    tasks = fields.Integer()
    pool_size = fields.Integer("Pool / capacity", group_operator=False)
    wall_seconds = fields.Float("Wall (s)", digits=(16, 3))
    cpu_seconds = fields.Float("CPU (s)", digits=(16, 3))
    startup_seconds = fields.Float("Start-up (s)", digits=(16, 3))
    speedup = fields.Float(digits=(16, 2), group_operator=False)
    ideal = fields.Float("Ideal speedup", digits=(16, 2), group_operator=False)
    efficiency = fields.Float(digits=(16, 2), group_operator=False, help="Speedup ÷ ideal.")
    expected = fields.Float(
        "Expected speedup",
        digits=(16, 2),
        group_operator=False,
        help="The ideal, once measured costs count: tasks run in waves of whole tasks, their CPU work fits on "
        "the cores and, for threads and asyncio, takes turns under one GIL, calls to this server wait for a "
        "free HTTP worker, and queue_job pays its dispatch (the same fan-out of no-op jobs).",
    )
    serial_seconds = fields.Float(
        "Serial CPU / task (s)",
        digits=(16, 4),
        group_operator=False,
        help="Threads and asyncio: the sequential run's CPU time per task, which takes turns under the one GIL.",
    )
    overhead_seconds = fields.Float(
        "Dispatch (s)",
        digits=(16, 3),
        help="queue_job: first created to last done of the same fan-out of no-op jobs, just before.",
    )
    verdict = fields.Char()
    pids = fields.Char("PIDs")
    thread_count = fields.Integer("Threads")
    errors = fields.Integer()
    cancelled = fields.Integer(help="Tasks cancelled when the run reached its deadline.")
    first_error = fields.Char()
    spans = fields.Json(help="(pid, thread, start, end) of each task, in seconds from the first.")

    @api.model
    def _values_from_row(self, experiment, row):
        """Field values from a lib.strategies.score() row."""
        return {
            "experiment_id": experiment.id,
            "sequence": theory.STRATEGIES.index(row["strategy"]),
            "strategy": row["strategy"],
            "kind": row["kind"],
            "tasks": row["tasks"],
            "pool_size": row["pool_size"],
            "wall_seconds": row["wall_seconds"],
            "cpu_seconds": row["cpu_seconds"],
            "startup_seconds": row["startup_seconds"],
            "speedup": row["speedup"],
            "ideal": row["ideal"],
            "efficiency": row["efficiency"],
            "expected": row["expected"],
            "overhead_seconds": row["overhead_seconds"],
            "serial_seconds": row["serial_seconds"],
            "verdict": row["verdict"],
            "pids": ", ".join(str(pid) for pid in row["pids"]),
            "thread_count": row["threads"],
            "errors": row["errors"],
            "cancelled": row.get("cancelled", 0),
            "first_error": row["first_error"],
            "spans": row["spans"],
        }
