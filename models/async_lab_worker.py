# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import contextlib
import json
import logging
import socket
import time
from datetime import timedelta

import psutil

from odoo import _, api, fields, models
from odoo.tools import SQL, config

from ..lib import processes
from ..lib.times import to_datetime, to_epoch
from ..process_tracker import TRANSIENT_ERRORS, tracker

_logger = logging.getLogger(__name__)

#: Columns only a process's own heartbeat writes: a sibling's view of a
#: process never resets its counters or says what it is.
SELF_REPORTED_ONLY = frozenset(
    {
        "requests",
        "jobs",
        "crons",
        "busy_since",
        "exit_reason",
        "threads",
        "server_config",
        "self_reported",
        "role",
        "db",
    }
)

#: Namespace of the advisory lock that keeps one sweeper per host at a time.
SWEEP_LOCK = 0x4A5B
RESPAWN_RETENTION_DAYS = 7
PAIRING_WINDOW = 600  # seconds: a vanished process is paired within this


def execute(cr, query, params=None):
    """``cr.execute`` for the statements of the process map. Their failures
    are handled by the caller (retried, or skipped until the next beat), so
    Odoo's ``bad query`` ERROR with the whole statement is not logged."""
    cr.execute(query, params, log_exceptions=False)


def process_start(create_time, now):
    """psutil create_time -> start on the time.time() clock (Linux)."""
    try:
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
    except OSError:
        return create_time
    return processes.start_time(create_time, now=time.time(), uptime=uptime, boot_time=psutil.boot_time())


class AsyncLabWorker(models.Model):
    """One Odoo process seen on one host: the process map's rows.

    Rows are written by the processes themselves (``_heartbeat``), by their
    siblings for the processes that never load async_lab (the master, and the
    job runner or gevent process of a server that does not preload its
    database), and by the refresh cron.
    """

    _name = "async_lab.worker"
    _description = "Odoo process"
    _order = "host, master_pid, role, pid"

    name = fields.Char(compute="_compute_name", store=True)
    host = fields.Char(required=True, readonly=True, index=True)
    pid = fields.Integer("PID", required=True, readonly=True, group_operator=False)
    master_pid = fields.Integer(
        "Master PID",
        readonly=True,
        index=True,
        group_operator=False,
        help="PID of the prefork master (its own PID in threaded mode).",
    )
    role = fields.Selection(processes.ROLES, readonly=True, index=True)
    db = fields.Char("Database", readonly=True)
    create_time = fields.Float(
        "Process create time",
        readonly=True,
        group_operator=False,
        help="Epoch seconds, from the kernel: tells a reused PID apart.",
    )
    started_at = fields.Datetime(readonly=True)
    first_seen = fields.Datetime(readonly=True)
    last_seen = fields.Datetime(readonly=True)
    gone_at = fields.Datetime(readonly=True, help="The last moment the process was seen alive.")
    state = fields.Selection(processes.STATES, default="alive", readonly=True, index=True)
    self_reported = fields.Boolean(readonly=True, help="The process writes its own heartbeat (it runs async_lab).")
    requests = fields.Integer("HTTP requests", readonly=True)
    jobs = fields.Integer("Queue jobs", readonly=True)
    crons = fields.Integer("Cron jobs", readonly=True)
    rss_mb = fields.Float("RSS (MiB)", readonly=True, digits=(16, 1))
    vms_mb = fields.Float(
        "Virtual memory (MiB)",
        readonly=True,
        digits=(16, 1),
        help="What Odoo compares with limit_memory_soft and limit_memory_hard.",
    )
    cpu_seconds = fields.Float("CPU (s)", readonly=True, digits=(16, 2))
    cpu_percent = fields.Float("CPU %", readonly=True, digits=(16, 1), group_operator=False)
    busy_since = fields.Datetime(readonly=True, help="Start of the oldest request it was serving.")
    exit_reason = fields.Selection(processes.EXIT_REASONS, readonly=True)
    threads = fields.Json(readonly=True, help="Threads of a threaded-mode server.")
    server_config = fields.Json(readonly=True, help="The server configuration this process sees (capacity advisor).")
    limit_time_cpu = fields.Integer("limit_time_cpu (s)", readonly=True, group_operator=False)
    limit_time_real = fields.Integer("limit_time_real (s)", readonly=True, group_operator=False)
    limit_memory_soft_mb = fields.Integer("limit_memory_soft (MiB)", readonly=True, group_operator=False)
    limit_memory_hard_mb = fields.Integer("limit_memory_hard (MiB)", readonly=True, group_operator=False)
    limit_request = fields.Integer("limit_request", readonly=True, group_operator=False)
    replaces_id = fields.Many2one(
        "async_lab.worker", readonly=True, ondelete="set null", help="The process this one replaced (a respawn)."
    )
    replaced_by_id = fields.Many2one("async_lab.worker", readonly=True, ondelete="set null")
    thread_count = fields.Integer(compute="_compute_thread_count")
    control_ids = fields.One2many("async_lab.control", "worker_id", "Server controls", readonly=True)
    node_control_ids = fields.One2many(
        "async_lab.control", "master_worker_id", "Server controls of the node", readonly=True
    )

    _sql_constraints = [
        ("process_uniq", "unique(host, pid, create_time)", "A process is recorded once per host."),
    ]

    @api.depends("host", "pid")
    def _compute_name(self):
        for rec in self:
            rec.name = "%s:%s" % (rec.host, rec.pid)

    def _compute_thread_count(self):
        for rec in self:
            rec.thread_count = len(rec.threads or [])

    def _register_hook(self):
        """Every process that loads this registry keeps a heartbeat."""
        res = super()._register_hook()
        tracker.attach(self.env.cr.dbname)
        return res

    # ------------------------------------------------------------------
    # Writing rows
    # ------------------------------------------------------------------
    def _upsert(self, vals, *, self_reported, final=False):
        """Insert or refresh one process row; return its id.

        ``final``: the last note of a process that exits on its own: its row
        is gone from now on. A gone row is never updated again (None). The
        first exit reason written stays (the master's "server_stop" before
        the worker's own "stopped").
        """
        now = to_datetime(vals["now"])
        limits = vals.get("limits") or {}
        row = {
            "host": vals["host"],
            "pid": vals["pid"],
            "master_pid": vals.get("master_pid"),
            "role": vals.get("role"),
            "db": vals.get("db") or self.env.cr.dbname,
            "create_time": vals["create_time"],
            "started_at": to_datetime(process_start(vals["create_time"], vals["now"])),
            "last_seen": now,
            "rss_mb": vals.get("rss_mb"),
            "vms_mb": vals.get("vms_mb"),
            "cpu_seconds": vals.get("cpu_seconds"),
            "cpu_percent": vals.get("cpu_percent"),
            "requests": vals.get("requests", 0),
            "jobs": vals.get("jobs", 0),
            "crons": vals.get("crons", 0),
            "busy_since": to_datetime(vals.get("busy_since")),
            "exit_reason": vals.get("exit_reason"),
            "threads": json.dumps(vals["threads"]) if vals.get("threads") is not None else None,
            "server_config": json.dumps(vals["server_config"]) if vals.get("server_config") else None,
            "self_reported": self_reported,
            **{
                key: limits.get(key, 0)
                for key in (
                    "limit_time_cpu",
                    "limit_time_real",
                    "limit_memory_soft_mb",
                    "limit_memory_hard_mb",
                    "limit_request",
                )
            },
        }
        columns = list(row)
        # Counters only come from the process itself: a sibling's view of a
        # process never resets them.
        updated = [c for c in columns if c not in ("host", "pid", "create_time", "started_at", "exit_reason")]
        if not self_reported:
            updated = [c for c in updated if c not in SELF_REPORTED_ONLY]
        if self_reported:
            updated.append("exit_reason")
        state = "gone" if final else "alive"
        execute(
            self.env.cr,
            SQL(
                """
            INSERT INTO async_lab_worker (%(cols)s, name, state, gone_at, first_seen,
                                          create_uid, write_uid, create_date, write_date)
            VALUES (%(vals)s, %(name)s, %(state)s, %(gone_at)s, %(now)s, %(uid)s, %(uid)s, %(now)s, %(now)s)
            ON CONFLICT (host, pid, create_time) DO UPDATE SET %(sets)s,
                state = EXCLUDED.state, gone_at = EXCLUDED.gone_at, write_date = EXCLUDED.write_date
             WHERE async_lab_worker.state != 'gone'
            RETURNING id, xmax = 0
            """,
                cols=SQL(", ").join(SQL.identifier(c) for c in columns),
                vals=SQL(", ").join(
                    SQL("%s::jsonb", row[c]) if c in ("threads", "server_config") else SQL("%s", row[c])
                    for c in columns
                ),
                name="%s:%s" % (row["host"], row["pid"]),
                state=state,
                gone_at=now if final else None,
                now=now,
                uid=self.env.uid,
                sets=SQL(", ").join(
                    SQL("%s = COALESCE(async_lab_worker.%s, EXCLUDED.%s)", *[SQL.identifier(c)] * 3)
                    if c == "exit_reason"
                    else SQL("%s = EXCLUDED.%s", SQL.identifier(c), SQL.identifier(c))
                    for c in updated
                ),
            ),
        )
        # A gone row is final: a late heartbeat of the process (one in flight
        # when it wrote its last note) changes nothing, so Gone At stays its
        # last moment seen alive. Then there is no id to return.
        found = self.env.cr.fetchone()
        if found and (found[1] or final):
            # A process the registry did not know (xmax = 0: inserted), or one
            # that ends: open dashboards show it at once, not at their next poll.
            self._notify_processes_changed("gone" if final else "new", row["pid"])
        return found and found[0]

    def _notify_processes_changed(self, change, pid):
        """Tell open dashboards that the process tree changed (a process came or went)."""
        self.env["async_lab.stats"]._notify_dashboard("processes", {"change": change, "pid": pid})

    @api.model
    def _heartbeat(self, snap):
        """A process reports itself (``snap`` from ProcessTracker.snapshot),
        then sweeps its host. The tracker runs the two steps in transactions
        of their own."""
        self._report(snap)
        self._sweep_host(snap)

    @api.model
    def _report(self, snap, final=False):
        """A process's own row: one statement, one row lock."""
        row_id = self._upsert(snap, self_reported=True, final=final)
        self.invalidate_model()
        return row_id

    def _lock_rows(self, where, params):
        """Lock the rows of ``where`` in id order, one statement: every
        transaction that writes several process rows takes its locks so,
        which is one order for all (no deadlock); a heartbeat locks one row.
        Return them as dicts."""
        cr = self.env.cr
        execute(
            cr,
            SQL(
                """SELECT id, host, pid, create_time, role, master_pid, last_seen, busy_since, exit_reason,
                      limit_time_real, self_reported, state
                 FROM async_lab_worker WHERE %s ORDER BY id FOR NO KEY UPDATE""",
                SQL(where, *params),
            ),
        )
        return cr.dictfetchall()

    @api.model
    def _note_server_stop(self, host, master_pid, reason, now, gevent_pid=None):
        """The master stops or reloads: the reason of each process of its
        tree, before it signals them. The websocket process is killed at once
        (SIGKILL): its row is gone now. On a reload the master goes on, in
        the same process: its row stays as it is."""
        rows = self._lock_rows(
            "host = %s AND (master_pid = %s OR pid = %s) AND state != 'gone'", [host, master_pid, master_pid]
        )
        ids = [r["id"] for r in rows if r["pid"] != master_pid or reason != "server_reload"]
        if ids:
            execute(
                self.env.cr,
                """
                UPDATE async_lab_worker SET exit_reason = COALESCE(exit_reason, %s),
                       last_seen = CASE WHEN pid = %s THEN %s ELSE last_seen END
                 WHERE id IN %s""",
                [reason, master_pid, to_datetime(now), tuple(ids)],
            )
        if gevent_pid:
            execute(
                self.env.cr,
                """
                UPDATE async_lab_worker SET state = 'gone', gone_at = %s, last_seen = %s
                 WHERE id IN %s AND pid = %s AND role = 'gevent'""",
                [to_datetime(now), to_datetime(now), tuple(ids) or (0,), gevent_pid],
            )
        self.invalidate_model()

    @api.model
    def _note_server_stopped(self, host, master_pid, reason, now):
        """After the master's stop: its children were reaped (or given up
        on), so the rows of its tree are gone, with the reason noted above
        unless they said their own. Not the master's own row on a reload."""
        rows = self._lock_rows("host = %s AND master_pid = %s AND state != 'gone'", [host, master_pid])
        ids = [r["id"] for r in rows if r["pid"] != master_pid or reason != "server_reload"]
        if ids:
            execute(
                self.env.cr,
                """
                UPDATE async_lab_worker SET state = 'gone', exit_reason = COALESCE(exit_reason, %s),
                       last_seen = CASE WHEN pid = %s THEN %s ELSE last_seen END,
                       gone_at = CASE WHEN pid = %s THEN %s ELSE last_seen END
                 WHERE id IN %s""",
                [reason, master_pid, to_datetime(now), master_pid, to_datetime(now), tuple(ids)],
            )
            self._notify_processes_changed("gone", master_pid)
        self.invalidate_model()

    # ------------------------------------------------------------------
    # Sweeping: what this host's processes see of each other
    # ------------------------------------------------------------------
    @staticmethod
    def _local_process(pid, create_time):
        """psutil.Process for (pid, create_time) if that process still runs."""
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if abs(proc.create_time() - create_time) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE:
                return proc
        return None

    @staticmethod
    def _observe(proc, now):
        """Row values of a process observed from outside (psutil)."""
        return dict(processes.sample(proc), host=socket.gethostname(), pid=proc.pid, now=now, cmdline=proc.cmdline())

    def _sweep_host(self, snap, force=False):
        """Reconcile this host's rows with the live process table.

        Marks vanished processes gone (with why), records the master and the
        children that do not report themselves, and pairs respawns. One
        sweeper per host at a time, at most once per heartbeat interval.
        """
        cr = self.env.cr
        host, now = snap["host"], snap["now"]
        if host != socket.gethostname():
            return False  # psutil only knows the processes of this host
        execute(cr, "SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))", [SWEEP_LOCK, host])
        if not cr.fetchone()[0]:
            return False
        master = snap.get("master_pid")
        if not force and master and master != snap["pid"]:
            cr.execute(
                "SELECT max(last_seen) FROM async_lab_worker WHERE host = %s AND pid = %s AND state != 'gone'",
                [host, master],
            )
            last = cr.fetchone()[0]
            if last and now - to_epoch(last) < processes.HEARTBEAT_INTERVAL * 0.8:
                return False
        # This host's live rows, and the recently gone ones that the pairing
        # may update, locked up front in id order.
        rows = self._lock_rows(
            "host = %s AND (state != 'gone' OR gone_at > %s)",
            [host, to_datetime(now - PAIRING_WINDOW)],
        )
        rows = [r for r in rows if r["state"] != "gone"]
        known = {(r["pid"], round(r["create_time"], 2)) for r in rows}
        for row in rows:
            proc = self._local_process(row["pid"], row["create_time"])
            if proc is None:
                reason = processes.death_reason(dict(row, busy_since=to_epoch(row["busy_since"])), now)
                # Gone since it was last seen alive, not since we noticed.
                execute(
                    cr,
                    "UPDATE async_lab_worker SET state = 'gone', gone_at = COALESCE(last_seen, %s), "
                    "exit_reason = %s WHERE id = %s",
                    [to_datetime(now), reason, row["id"]],
                )
                self._notify_processes_changed("gone", row["pid"])
            elif not row["self_reported"]:
                self._upsert(
                    dict(
                        self._observe(proc, now),
                        master_pid=row["master_pid"],
                        limits=processes.limits_for(row["role"], config),
                    ),
                    self_reported=False,
                )
            else:
                state = processes.state_for(to_epoch(row["last_seen"]), now, local_alive=True)
                if state != row["state"]:
                    execute(cr, "UPDATE async_lab_worker SET state = %s WHERE id = %s", [state, row["id"]])
        if master and master != snap["pid"]:
            self._record_master_tree(snap, master, known, now)
        self._pair_respawns(host, now)
        return True

    def _record_master_tree(self, snap, master_pid, known, now):
        """The master and the children that don't report themselves."""
        try:
            master = psutil.Process(master_pid)
            children = master.children()
        except (psutil.Error, ValueError):
            return
        self._upsert(
            dict(
                self._observe(master, now),
                master_pid=master_pid,
                role="master",
                limits=processes.limits_for("master", config),
            ),
            self_reported=False,
        )
        own_create_time = snap["create_time"]
        siblings = snap.get("siblings") or {}
        for child in children:
            try:
                if child.status() == psutil.STATUS_ZOMBIE:
                    continue  # dead, not yet reaped by the master
                observed = self._observe(child, now)
            except psutil.Error:
                continue
            if (child.pid, round(observed["create_time"], 2)) in known or child.pid == snap["pid"]:
                continue
            # The inherited snapshot only speaks of processes older than us.
            evidence = siblings if observed["create_time"] < own_create_time else {}
            role = processes.classify_child(child.pid, observed["cmdline"], evidence)
            if role:
                self._upsert(
                    dict(observed, master_pid=master_pid, role=role, limits=processes.limits_for(role, config)),
                    self_reported=False,
                )

    def _pair_respawns(self, host, now):
        cr = self.env.cr
        cr.execute(
            """SELECT id, host, master_pid, role, gone_at, exit_reason, pid,
                      extract(epoch FROM started_at) AS create_time,
                      extract(epoch FROM last_seen) AS last_seen
                 FROM async_lab_worker
                WHERE host = %s AND state = 'gone' AND replaced_by_id IS NULL
                  AND role NOT IN ('master', 'threaded') AND gone_at > %s
                  -- a worker stopped by a server control that removed it is not replaced
                  AND NOT EXISTS (SELECT 1 FROM async_lab_control c
                                   WHERE c.worker_id = async_lab_worker.id AND c.state = 'done'
                                     AND c.action = 'remove_http_worker')""",
            [host, to_datetime(now - PAIRING_WINDOW)],
        )
        gone = cr.dictfetchall()
        if not gone:
            return
        # A replacement may be gone already (killed in its turn before this
        # sweep): it still replaced the one before it.
        cr.execute(
            """SELECT id, host, master_pid, role, pid, extract(epoch FROM started_at) AS create_time
                 FROM async_lab_worker
                WHERE host = %s AND replaces_id IS NULL AND (state != 'gone' OR gone_at > %s)""",
            [host, to_datetime(now - PAIRING_WINDOW)],
        )
        fresh = cr.dictfetchall()
        by_id = {r["id"]: r for r in fresh + gone}  # a row in both: its gone view, which has more
        Respawn = self.env["async_lab.respawn"].sudo()
        for pair in processes.pair_respawns(gone, fresh):
            old, new = by_id[pair.old_id], by_id[pair.new_id]
            execute(cr, "UPDATE async_lab_worker SET replaced_by_id = %s WHERE id = %s", [new["id"], old["id"]])
            execute(cr, "UPDATE async_lab_worker SET replaces_id = %s WHERE id = %s", [old["id"], new["id"]])
            Respawn.create(
                {
                    "host": host,
                    "master_pid": old["master_pid"],
                    "role": old["role"],
                    "old_pid": old["pid"],
                    "new_pid": new["pid"],
                    "old_worker_id": old["id"],
                    "new_worker_id": new["id"],
                    "gone_at": old["gone_at"],
                    "respawned_at": to_datetime(float(new["create_time"])),
                    "reason": old["exit_reason"] or "killed",
                }
            )
            _logger.info(
                "respawn on %s: %s %s -> %s (%s)",
                host,
                old["role"],
                old["pid"],
                new["pid"],
                old["exit_reason"] or "killed",
            )

    # ------------------------------------------------------------------
    # Server controls (async_lab.control validates, records and routes them)
    # ------------------------------------------------------------------
    def _request_control(self, action):
        self.ensure_one()
        Control = self.env["async_lab.control"]
        node = Control._node_label(self.host, self.master_pid)
        vals = {"action": action, "node": node}
        if action in ("recycle", "kill"):
            vals["pid"] = self.pid
        record = Control.create(vals)
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "info",
                "message": _("%(action)s requested: the node carries it out within seconds.", action=record.name),
                "next": {"type": "ir.actions.act_window_close"},
            },
        }

    def action_control_recycle(self):
        return self._request_control("recycle")

    def action_control_kill(self):
        return self._request_control("kill")

    def action_control_add_http_worker(self):
        return self._request_control("add_http_worker")

    def action_control_remove_http_worker(self):
        return self._request_control("remove_http_worker")

    # ------------------------------------------------------------------
    # Cron
    # ------------------------------------------------------------------
    @api.model
    def _cron_refresh(self):
        """Async Lab: refresh process registry.

        Records the cron worker running it, sweeps this host, ages out the
        rows of other hosts, pairs their respawns and prunes old rows.
        """
        now = time.time()
        snap = tracker.snapshot(now)
        tracker.dbs.add(self.env.cr.dbname)
        steps = [
            ("sweep", lambda: self._sweep_host(snap, force=True)),
            ("other hosts", lambda: self._age_other_hosts(snap["host"], now)),
            ("prune", lambda: self._prune(now)),
        ]
        if snap["role"]:
            steps.insert(0, ("own row", lambda: self._upsert(dict(snap, db=self.env.cr.dbname), self_reported=True)))
        for name, step in steps:
            # The cron's transaction is Odoo's REPEATABLE READ, begun before
            # the heartbeats that wrote these rows since: such a conflict is
            # expected; the heartbeats do the same work every few seconds.
            try:
                with self.env.cr.savepoint():
                    step()
            except TRANSIENT_ERRORS as exc:
                _logger.info(
                    "process registry refresh: %s left to the next run (%s)",
                    name,
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                )

    def _age_other_hosts(self, host, now):
        """Rows of other hosts: alive/stale/gone from their age alone."""
        hosts = set()
        for row in self._lock_rows("host != %s AND state != 'gone'", [host]):
            state = processes.state_for(to_epoch(row["last_seen"]), now)
            if state != row["state"]:
                hosts.add(row["host"])
                execute(
                    self.env.cr,
                    "UPDATE async_lab_worker SET state = %s, gone_at = CASE WHEN %s THEN last_seen END, "
                    "exit_reason = COALESCE(exit_reason, %s) WHERE id = %s",
                    [state, state == "gone", "killed" if state == "gone" else None, row["id"]],
                )
                if state == "gone":
                    self._notify_processes_changed("gone", row["pid"])
        for other in sorted(hosts):
            self._pair_respawns(other, now)

    def _prune(self, now):
        hours = self.env["ir.config_parameter"]._async_lab_int("async_lab.process_retention_hours")
        cr = self.env.cr
        cr.execute(
            "DELETE FROM async_lab_worker WHERE state = 'gone' AND gone_at < %s",
            [to_datetime(now) - timedelta(hours=hours)],
        )
        cr.execute(
            "DELETE FROM async_lab_respawn WHERE respawned_at < %s",
            [to_datetime(now) - timedelta(days=RESPAWN_RETENTION_DAYS)],
        )
        # The server control log, as long as the respawns (never an action still on its way).
        cr.execute(
            "DELETE FROM async_lab_control WHERE state NOT IN ('pending', 'running') AND requested_at < %s",
            [to_datetime(now) - timedelta(days=RESPAWN_RETENTION_DAYS)],
        )
        self.invalidate_model()
        self.env["async_lab.respawn"].invalidate_model()
        self.env["async_lab.control"].invalidate_model()
