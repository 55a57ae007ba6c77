# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""What ``GET /async_lab/metrics`` exposes, read from the database.

Counters that Prometheus can trust must never go down, whatever happens to
the rows they count: queue_job's autovacuum deletes done jobs, a failed job
can be requeued, Async Lab prunes its respawns. So the counters are kept by
triggers, in two tables of their own, at the moment the counted event is
written:

- ``async_lab_job_counter``: per channel, the jobs done and failed, the
  jobs failed now, and the histogram of each stage of the done jobs
  (:data:`..lib.metrics.BUCKETS`). A trigger on ``queue_job`` logs a job
  when its state becomes done or failed, and when it leaves the failed
  ones or is deleted, in ``async_lab_job_counter_log``: it only appends, so
  that no job's transaction ever waits on, or conflicts with, another's
  (Odoo's REPEATABLE READ would fail the second of two updates of one
  counter row). The rollup cron moves the log into the totals every
  minute; a scrape adds both, and the totals' rows of a channel (the
  ``slot`` column: rows of earlier versions). A TRUNCATE of queue_job is
  not seen: the update of the module starts the counters again only when
  their table is missing.
- ``async_lab_respawn_counter``: respawns per host, role and exit reason; a
  trigger on ``async_lab_respawn`` adds each new row.

Both start from what the database holds when they are created (the install
or the update that adds them). A scrape reads a bounded number of rows:
these tables, the live processes, and the jobs not yet done (queue_job's
state index). None of it grows with the done jobs of ``queue_job``.
"""

import logging
import re
import time

from odoo import _, api, models
from odoo.exceptions import AccessError
from odoo.tools import SQL

from odoo.addons.queue_job.jobrunner.runner import PG_ADVISORY_LOCK_ID

from ..lib import metrics
from ..lib.groups import GROUP_USER
from ..lib.times import to_epoch
from .queue_job import ACTIVE_STATES, DONE, DONE_STAGES, FAILED

_logger = logging.getLogger(__name__)

JOB_COUNTER = "async_lab_job_counter"
JOB_COUNTER_LOG = "async_lab_job_counter_log"
RESPAWN_COUNTER = "async_lab_respawn_counter"
JOB_TRIGGER_FUNCTION = "async_lab_count_job"
RESPAWN_TRIGGER_FUNCTION = "async_lab_count_respawn"
BUCKET_FUNCTION = "async_lab_stage_bucket"
#: queue_job triggers: for inserted rows, for changes of state (or of a failed job's channel), for deleted failed jobs.
JOB_TRIGGERS = ("async_lab_count_job_insert", "async_lab_count_job_update", "async_lab_count_job_delete")
RESPAWN_TRIGGER = "async_lab_count_respawn"
#: The columns of the job counters and of their log (the totals also have ``slot``).
COUNT_COLUMNS = frozenset(
    {"channel", "done", "failed", "failed_now", *metrics.STAGES, *(stage + "_sum" for stage in metrics.STAGES)}
)
#: The columns of queue_job that a stage's expression reads.
STAGE_COLUMNS = re.compile(r"\b(date_created|date_enqueued|date_started|date_done|async_lab_date_received)\b")


def stage_of_new_row(stage):
    """The SQL expression of ``stage``'s seconds on the trigger's ``NEW`` row.

    >>> stage_of_new_row("started_done")
    "date_part('epoch', NEW.date_done - NEW.date_started)"
    """
    return STAGE_COLUMNS.sub(r"NEW.\1", DONE_STAGES[stage])


def drop_counters(cr):
    """Drop the triggers, functions and tables of the counters (the uninstall)."""
    for trigger in JOB_TRIGGERS:
        cr.execute(SQL("DROP TRIGGER IF EXISTS %s ON queue_job", SQL.identifier(trigger)))
    if table_exists(cr, "async_lab_respawn"):
        cr.execute(SQL("DROP TRIGGER IF EXISTS %s ON async_lab_respawn", SQL.identifier(RESPAWN_TRIGGER)))
    for function in (JOB_TRIGGER_FUNCTION, RESPAWN_TRIGGER_FUNCTION):
        cr.execute(SQL("DROP FUNCTION IF EXISTS %s()", SQL.identifier(function)))
    cr.execute(SQL("DROP FUNCTION IF EXISTS %s(float8)", SQL.identifier(BUCKET_FUNCTION)))
    for table in (JOB_COUNTER, JOB_COUNTER_LOG, RESPAWN_COUNTER):
        cr.execute(SQL("DROP TABLE IF EXISTS %s", SQL.identifier(table)))


def drop_if_reshaped(cr, table, columns):
    """Drop ``table`` if it exists with other columns than ``columns``; return whether it did."""
    cr.execute(
        "SELECT array_agg(column_name::text) FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s",
        [table],
    )
    found = cr.fetchone()[0]
    if found and set(found) != set(columns):
        cr.execute(SQL("DROP TABLE %s", SQL.identifier(table)))
        return True
    return False


def table_exists(cr, name):
    cr.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    return cr.fetchone()[0]


class AsyncLabMetrics(models.AbstractModel):
    _name = "async_lab.metrics"
    _description = "Async Lab Prometheus metrics"

    def init(self):
        cr = self.env.cr
        cr.execute(
            SQL(
                """CREATE OR REPLACE FUNCTION %s(seconds float8) RETURNS int
                   LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
                   AS $$ SELECT %s $$""",
                SQL.identifier(BUCKET_FUNCTION),
                SQL(metrics.bucket_sql("seconds")),
            )
        )
        self._init_job_counter(cr)
        self._init_respawn_counter(cr)

    @api.model
    def _init_job_counter(self, cr):
        """Create the job counters (from the jobs there), their function and triggers.

        A counter table of another shape (an earlier version of this code, or
        other buckets) is dropped and made again from the jobs there: counters
        whose meaning changed must start again (Prometheus sees a reset).
        """
        self._init_job_counter_log(cr)
        stages = metrics.STAGES
        width = len(metrics.BUCKETS) + 1
        if drop_if_reshaped(cr, JOB_COUNTER, {"slot", *COUNT_COLUMNS}):
            _logger.info("The metrics' job counters change shape: counting them again from queue_job")
        if table_exists(cr, JOB_COUNTER):
            cr.execute(
                SQL(
                    "SELECT EXISTS(SELECT 1 FROM %s WHERE %s)",
                    SQL.identifier(JOB_COUNTER),
                    SQL(" OR ").join(
                        SQL("array_length(%s, 1) IS DISTINCT FROM %s", SQL.identifier(stage), width) for stage in stages
                    ),
                )
            )
            if cr.fetchone()[0]:
                _logger.info("The metrics' histogram buckets changed: counting them again from queue_job")
                cr.execute(SQL("DROP TABLE %s", SQL.identifier(JOB_COUNTER)))
        if not table_exists(cr, JOB_COUNTER):
            cr.execute(
                SQL(
                    "CREATE TABLE %s (channel varchar NOT NULL, slot int NOT NULL,"
                    " done bigint NOT NULL DEFAULT 0, failed bigint NOT NULL DEFAULT 0,"
                    " failed_now bigint NOT NULL DEFAULT 0, %s,"
                    " PRIMARY KEY (channel, slot))",
                    SQL.identifier(JOB_COUNTER),
                    SQL(", ").join(
                        SQL(
                            "%s bigint[] NOT NULL DEFAULT array_fill(0::bigint, ARRAY[%s]),"
                            " %s float8 NOT NULL DEFAULT 0",
                            SQL.identifier(stage),
                            width,
                            SQL.identifier(stage + "_sum"),
                        )
                        for stage in stages
                    ),
                )
            )
            # What the log holds is in queue_job, hence in the new counters.
            cr.execute(SQL("DELETE FROM %s", SQL.identifier(JOB_COUNTER_LOG)))
            self._seed_job_counter(cr)
        stages = SQL(", ").join(
            SQL("%s, %s", SQL.identifier(stage), SQL.identifier(stage + "_sum")) for stage in metrics.STAGES
        )
        values = SQL(", ").join(
            SQL(
                "%s(%s), %s",
                SQL.identifier(BUCKET_FUNCTION),
                SQL(stage_of_new_row(stage)),
                SQL(stage_of_new_row(stage)),
            )
            for stage in metrics.STAGES
        )
        cr.execute(
            SQL(
                """CREATE OR REPLACE FUNCTION %(function)s() RETURNS trigger LANGUAGE plpgsql AS $function$
                DECLARE
                    v_entered boolean;
                BEGIN
                    -- A failed job leaves the failed ones: requeued, done by hand, deleted, or moved.
                    IF TG_OP <> 'INSERT' AND OLD.state = %(failed)s
                       AND (TG_OP = 'DELETE' OR NEW.state <> %(failed)s OR NEW.channel IS DISTINCT FROM OLD.channel)
                    THEN
                        INSERT INTO %(log)s (channel, failed_now) VALUES (OLD.channel, -1);
                    END IF;
                    IF TG_OP = 'DELETE' THEN
                        RETURN NULL;
                    END IF;
                    v_entered := TG_OP = 'INSERT' OR OLD.state IS DISTINCT FROM NEW.state;
                    IF NEW.state = %(failed)s AND (v_entered OR NEW.channel IS DISTINCT FROM OLD.channel) THEN
                        INSERT INTO %(log)s (channel, failed, failed_now) VALUES (NEW.channel, v_entered::int, 1);
                    ELSIF NEW.state = %(done)s AND v_entered THEN
                        INSERT INTO %(log)s (channel, done, %(stages)s) VALUES (NEW.channel, 1, %(values)s);
                    END IF;
                    RETURN NULL;
                END
                $function$""",
                function=SQL.identifier(JOB_TRIGGER_FUNCTION),
                log=SQL.identifier(JOB_COUNTER_LOG),
                done=DONE,
                failed=FAILED,
                stages=stages,
                values=values,
            )
        )
        insert, update, delete = JOB_TRIGGERS
        for trigger, event, condition in (
            (insert, "INSERT", "NEW.state IN ('done', 'failed')"),
            (
                update,
                "UPDATE OF state, channel",
                "(NEW.state IN ('done', 'failed') AND OLD.state IS DISTINCT FROM NEW.state)"
                " OR ((OLD.state = 'failed' OR NEW.state = 'failed') AND OLD.channel IS DISTINCT FROM NEW.channel)"
                " OR (OLD.state = 'failed' AND NEW.state IS DISTINCT FROM 'failed')",
            ),
            (delete, "DELETE", "OLD.state = 'failed'"),
        ):
            cr.execute(SQL("DROP TRIGGER IF EXISTS %s ON queue_job", SQL.identifier(trigger)))
            cr.execute(
                SQL(
                    "CREATE TRIGGER %s AFTER %s ON queue_job FOR EACH ROW WHEN (%s) EXECUTE FUNCTION %s()",
                    SQL.identifier(trigger),
                    SQL(event),
                    SQL(condition),
                    SQL.identifier(JOB_TRIGGER_FUNCTION),
                )
            )

    @api.model
    def _init_job_counter_log(self, cr):
        """The log the trigger appends to: one row per counted event, never updated.

        Appending is what keeps the trigger out of the way of the jobs: Odoo
        runs its transactions at REPEATABLE READ, where two transactions that
        update the same counter row fail with a serialization error, and the
        job's whole transaction would go with it. Nothing but the log's
        compaction (:meth:`_compact_counters`, every minute) writes the
        totals.
        """
        drop_if_reshaped(cr, JOB_COUNTER_LOG, COUNT_COLUMNS)
        cr.execute(
            SQL(
                "CREATE TABLE IF NOT EXISTS %s (channel varchar NOT NULL, done int NOT NULL DEFAULT 0,"
                " failed int NOT NULL DEFAULT 0, failed_now int NOT NULL DEFAULT 0, %s)",
                SQL.identifier(JOB_COUNTER_LOG),
                SQL(", ").join(
                    SQL("%s int, %s float8", SQL.identifier(stage), SQL.identifier(stage + "_sum"))
                    for stage in metrics.STAGES
                ),
            )
        )

    @api.model
    def _compact_counters(self):
        """Move the trigger's log into the totals (the rollup cron, every minute); return the rows moved.

        The log's rows are deleted and added to the totals in one
        transaction: a scrape, which reads both, sees the same figures
        before and after.
        """
        cr = self.env.cr
        stages = metrics.STAGES
        cr.execute(
            SQL(
                "DELETE FROM %s RETURNING channel, done, failed, failed_now, %s",
                SQL.identifier(JOB_COUNTER_LOG),
                SQL(", ").join(SQL("%s, %s", SQL.identifier(s), SQL.identifier(s + "_sum")) for s in stages),
            )
        )
        totals = {}
        moved = 0
        for channel, done, failed, failed_now, *values in cr.fetchall():
            moved += 1
            total = totals.setdefault(channel, self._empty_counts(channel))
            self._add_event(total, done, failed, failed_now, values)
        for total in totals.values():
            cr.execute(
                SQL(
                    """INSERT INTO %(table)s AS t (channel, slot, done, failed, failed_now, %(columns)s)
                       VALUES (%(channel)s, 0, %(done)s, %(failed)s, %(failed_now)s, %(values)s)
                       ON CONFLICT (channel, slot) DO UPDATE
                          SET done = t.done + EXCLUDED.done, failed = t.failed + EXCLUDED.failed,
                              failed_now = t.failed_now + EXCLUDED.failed_now, %(updates)s""",
                    table=SQL.identifier(JOB_COUNTER),
                    columns=SQL(", ").join(
                        SQL("%s, %s", SQL.identifier(s), SQL.identifier(s + "_sum")) for s in stages
                    ),
                    channel=total["channel"],
                    done=total["done_total"],
                    failed=total["failed_total"],
                    failed_now=total["failed_now"],
                    values=SQL(", ").join(
                        SQL("%s::bigint[], %s", total["stages"][s]["buckets"], total["stages"][s]["sum"])
                        for s in stages
                    ),
                    updates=SQL(", ").join(
                        SQL(
                            "%(stage)s = ARRAY(SELECT a + b FROM unnest(t.%(stage)s, EXCLUDED.%(stage)s)"
                            " WITH ORDINALITY AS u(a, b, i) ORDER BY i), %(sum)s = t.%(sum)s + EXCLUDED.%(sum)s",
                            stage=SQL.identifier(s),
                            sum=SQL.identifier(s + "_sum"),
                        )
                        for s in stages
                    ),
                )
            )
        return moved

    @staticmethod
    def _empty_counts(channel):
        return {
            "channel": channel,
            "done_total": 0,
            "failed_total": 0,
            "failed_now": 0,
            "stages": {s: {"buckets": [0] * (len(metrics.BUCKETS) + 1), "sum": 0.0} for s in metrics.STAGES},
        }

    @staticmethod
    def _add_event(total, done, failed, failed_now, values):
        """Add one log row (or an aggregate of log rows, ``values`` = bucket, seconds[, count] by stage)."""
        total["done_total"] += done
        total["failed_total"] += failed
        total["failed_now"] += failed_now
        for index, stage in enumerate(metrics.STAGES):
            bucket, seconds = values[2 * index], values[2 * index + 1]
            if bucket is not None:
                histogram = total["stages"][stage]
                histogram["buckets"][bucket - 1] += 1
                histogram["sum"] += seconds

    @api.model
    def _seed_job_counter(self, cr):
        """Start the job counters from the jobs queue_job holds now (slot 0)."""
        table = SQL.identifier(JOB_COUNTER)
        cr.execute(
            SQL(
                """INSERT INTO %s (channel, slot, done, failed, failed_now)
                   SELECT channel, 0, count(*) FILTER (WHERE state = %s), count(*) FILTER (WHERE state = %s),
                          count(*) FILTER (WHERE state = %s)
                     FROM queue_job WHERE state IN %s AND channel IS NOT NULL GROUP BY channel""",
                table,
                DONE,
                FAILED,
                FAILED,
                (DONE, FAILED),
            )
        )
        for stage in metrics.STAGES:
            expression = SQL(DONE_STAGES[stage])
            cr.execute(
                SQL(
                    """SELECT channel, %s(seconds), count(*), sum(seconds)
                         FROM (SELECT channel, %s AS seconds FROM queue_job WHERE state = %s) AS done
                        WHERE seconds IS NOT NULL GROUP BY 1, 2""",
                    SQL.identifier(BUCKET_FUNCTION),
                    expression,
                    DONE,
                )
            )
            for channel, bucket, count, total in cr.fetchall():
                cr.execute(
                    SQL(
                        "UPDATE %s SET %s[%s] = %s, %s = %s + %s WHERE channel = %s AND slot = 0",
                        table,
                        SQL.identifier(stage),
                        bucket,
                        count,
                        SQL.identifier(stage + "_sum"),
                        SQL.identifier(stage + "_sum"),
                        total,
                        channel,
                    )
                )

    @api.model
    def _init_respawn_counter(self, cr):
        if not table_exists(cr, RESPAWN_COUNTER):
            cr.execute(
                SQL(
                    "CREATE TABLE %s (host varchar NOT NULL, role varchar NOT NULL, reason varchar NOT NULL,"
                    " total bigint NOT NULL DEFAULT 0, PRIMARY KEY (host, role, reason))",
                    SQL.identifier(RESPAWN_COUNTER),
                )
            )
            cr.execute(
                SQL(
                    "INSERT INTO %s (host, role, reason, total)"
                    " SELECT host, coalesce(role, ''), reason, count(*) FROM async_lab_respawn GROUP BY 1, 2, 3",
                    SQL.identifier(RESPAWN_COUNTER),
                )
            )
        cr.execute(
            SQL(
                """CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $function$
                BEGIN
                    INSERT INTO %s AS c (host, role, reason, total)
                    VALUES (NEW.host, coalesce(NEW.role, ''), NEW.reason, 1)
                    ON CONFLICT (host, role, reason) DO UPDATE SET total = c.total + 1;
                    RETURN NULL;
                END
                $function$""",
                SQL.identifier(RESPAWN_TRIGGER_FUNCTION),
                SQL.identifier(RESPAWN_COUNTER),
            )
        )
        cr.execute(SQL("DROP TRIGGER IF EXISTS %s ON async_lab_respawn", SQL.identifier(RESPAWN_TRIGGER)))
        cr.execute(
            SQL(
                "CREATE TRIGGER %s AFTER INSERT ON async_lab_respawn FOR EACH ROW EXECUTE FUNCTION %s()",
                SQL.identifier(RESPAWN_TRIGGER),
                SQL.identifier(RESPAWN_TRIGGER_FUNCTION),
            )
        )

    # ------------------------------------------------------------------
    # A scrape
    # ------------------------------------------------------------------
    @api.model
    def get_snapshot(self):
        """Everything a scrape exposes, as plain data (the shape :mod:`..lib.metrics` documents)."""
        if not self.env.su and not self.env.user.has_group(GROUP_USER):
            # Raw SQL below reads queue_job past its access rules.
            raise AccessError(_("Metrics need the Async Lab / User group."))
        started = time.perf_counter()
        for model in ("queue.job", "async_lab.worker", "async_lab.respawn"):
            self.env[model].flush_model()
        snapshot = {
            "channels": self._channel_rows(),
            "processes": self._process_rows(),
            "respawns": self._respawn_rows(),
            "runner": self._runner(),
            "findings": self._findings(),
        }
        snapshot["scrape_seconds"] = round(time.perf_counter() - started, 6)
        return snapshot

    @api.model
    def render(self):
        """The text exposition of a fresh snapshot, as bytes."""
        return metrics.exposition(self.get_snapshot())

    @api.model
    def _channel_rows(self):
        cr = self.env.cr
        stages = metrics.STAGES
        cr.execute(
            SQL(
                "SELECT channel, done, failed, failed_now, %s FROM %s",
                SQL(", ").join(SQL("%s, %s", SQL.identifier(s), SQL.identifier(s + "_sum")) for s in stages),
                SQL.identifier(JOB_COUNTER),
            )
        )
        channels = {}

        def row(name):
            return channels.setdefault(
                name,
                {
                    "channel": name,
                    "done_total": 0,
                    "failed_total": 0,
                    "capacity": None,
                    "states": {},
                    "stages": {s: {"buckets": [0] * (len(metrics.BUCKETS) + 1), "sum": 0.0} for s in stages},
                },
            )

        for name, done, failed, failed_now, *values in cr.fetchall():
            target = row(name)
            target["done_total"] += done
            target["failed_total"] += failed
            target["states"][FAILED] = target["states"].get(FAILED, 0) + failed_now
            for index, stage in enumerate(stages):
                counts, total = values[2 * index], values[2 * index + 1]
                histogram = target["stages"][stage]
                histogram["buckets"] = [a + b for a, b in zip(histogram["buckets"], counts, strict=True)]
                histogram["sum"] += total
        # The events the trigger logged since the last compaction (a minute's worth).
        log = SQL.identifier(JOB_COUNTER_LOG)
        cr.execute(SQL("SELECT channel, sum(done), sum(failed), sum(failed_now) FROM %s GROUP BY channel", log))
        for name, done, failed, failed_now in cr.fetchall():
            target = row(name)
            target["done_total"] += done
            target["failed_total"] += failed
            target["states"][FAILED] = target["states"].get(FAILED, 0) + failed_now
        cr.execute(
            SQL(" UNION ALL ").join(
                SQL(
                    "SELECT channel, %s, %s, count(*), sum(%s) FROM %s WHERE %s IS NOT NULL GROUP BY 1, 3",
                    stage,
                    SQL.identifier(stage),
                    SQL.identifier(stage + "_sum"),
                    log,
                    SQL.identifier(stage),
                )
                for stage in stages
            )
        )
        for name, stage, bucket, count, seconds in cr.fetchall():
            histogram = row(name)["stages"][stage]
            histogram["buckets"][bucket - 1] += count
            histogram["sum"] += seconds
        # Jobs still to run, through queue_job's state index: they are few.
        # The failed ones, which queue_job never deletes, are counted above.
        cr.execute(
            "SELECT channel, state, count(*) FROM queue_job WHERE state IN %s AND channel IS NOT NULL GROUP BY 1, 2",
            [ACTIVE_STATES],
        )
        for name, state, count in cr.fetchall():
            row(name)["states"][state] = count
        stats = self.env["async_lab.stats"]
        _text, config = stats._channel_config()
        for name in config:
            row(name)
        for name, target in channels.items():
            target["capacity"] = stats._channel_capacity(name)
            for state in (*ACTIVE_STATES, FAILED):
                target["states"].setdefault(state, 0)
        return [channels[name] for name in sorted(channels)]

    @api.model
    def _process_rows(self):
        """The processes that still report (alive) or stopped reporting (stale); the gone ones are not exposed."""
        self.env.cr.execute(
            """SELECT host, pid, role, state, rss_mb, cpu_seconds, requests, jobs, crons, started_at
                 FROM async_lab_worker WHERE state != 'gone' ORDER BY host, pid"""
        )
        return [
            {
                "host": host,
                "pid": pid,
                "role": role,
                "up": state == "alive",
                "rss_bytes": round(rss_mb * 2**20) if rss_mb is not None else None,
                "cpu_seconds": cpu_seconds,
                "requests": requests or 0,
                "jobs": jobs or 0,
                "crons": crons or 0,
                "start_time": to_epoch(started_at),
            }
            for host, pid, role, state, rss_mb, cpu_seconds, requests, jobs, crons, started_at in self.env.cr.fetchall()
        ]

    @api.model
    def _respawn_rows(self):
        self.env.cr.execute(
            SQL("SELECT host, role, reason, total FROM %s ORDER BY 1, 2, 3", SQL.identifier(RESPAWN_COUNTER))
        )
        return [
            {"host": host, "role": role, "reason": reason, "total": total}
            for host, role, reason, total in self.env.cr.fetchall()
        ]

    @api.model
    def _runner(self):
        """The job runner that holds queue_job's lock on this database, if any.

        PostgreSQL knows the backend that holds the lock; Odoo names its
        connections ``odoo-<pid>`` (unless ODOO_PGAPPNAME says otherwise),
        which gives the runner's PID, and the runner's heartbeat its host
        (``lib/metrics.runner_host``: two hosts with that PID, or none).
        """
        cr = self.env.cr
        cr.execute(
            """SELECT a.application_name, extract(epoch FROM a.backend_start)
                 FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND l.classid::bigint = %s AND l.objid::bigint = %s""",
            [PG_ADVISORY_LOCK_ID >> 32, PG_ADVISORY_LOCK_ID & 0xFFFFFFFF],
        )
        found = cr.fetchone()
        if not found:
            return {"up": False, "host": None, "pid": None}
        match = re.fullmatch(r"odoo-(\d+)", found[0] or "")
        cr.execute(
            """SELECT host, pid, extract(epoch FROM started_at) AS started_at FROM async_lab_worker
                WHERE state = 'alive' AND (role = 'jobrunner'
                      OR (role = 'threaded' AND threads @> '[{"role": "jobrunner"}]'::jsonb))"""
        )
        runners = [
            dict(r, started_at=float(r["started_at"]) if r["started_at"] is not None else None)
            for r in cr.dictfetchall()
        ]
        host, pid = metrics.runner_host(
            int(match.group(1)) if match else None, float(found[1]) if found[1] is not None else None, runners
        )
        return {"up": True, "host": host, "pid": pid}

    @api.model
    def _findings(self):
        """The capacity advisor's findings, counted by code and severity (none if the advisor fails)."""
        try:
            with self.env.cr.savepoint():
                advice = self.env["async_lab.advisor"].get_advice()
        except Exception:  # the metrics must not go down with a rule
            _logger.exception("the capacity advisor failed; its findings are left out of the metrics")
            return []
        counts = {}
        for finding in advice["findings"]:
            key = (finding["code"], finding["severity"])
            counts[key] = counts.get(key, 0) + 1
        return [{"code": code, "severity": severity, "count": n} for (code, severity), n in sorted(counts.items())]
