# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Server controls: a Manager's request to signal a node's master or one of its workers.

The request is validated against the process registry and recorded
(``create``), then it travels through the database: the node that owns the
process picks it up in its own heartbeat (``process_tracker.carry_out_controls``:
``_claim_pending``, a ``FOR UPDATE SKIP LOCKED`` of its node's pending rows,
then ``_act`` and ``_record``), checks the processes again with psutil at
that moment (``lib/control.py``), sends the signal and records the result.
Nothing here signals a process of another node.
"""

import logging
import os
import signal
import socket
import time
from datetime import timedelta

import psutil

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import SQL, config

from ..lib import control
from ..lib.groups import GROUP_MANAGER
from ..lib.times import utcnow

_logger = logging.getLogger(__name__)

#: ir.config_parameter: HTTP workers a node may run above its configured ``workers``.
MAX_EXTRA_PARAM = "async_lab.control_max_extra_http_workers"
#: Namespace of the advisory lock that lets one process of a node claim at a time.
CONTROL_LOCK = 0x4A5C
#: The largest PID Linux gives (pid_max's ceiling, 2**22).
MAX_PID = 4194304
#: Actions one heartbeat carries out at most.
ACTIONS_PER_BEAT = 5
#: Actions that change a node's HTTP worker count: one at a time per node.
POPULATION_ACTIONS = ("add_http_worker", "remove_http_worker")

STATES = [
    ("pending", "Pending"),
    ("running", "Running"),
    ("done", "Done"),
    ("refused", "Refused"),
    ("failed", "Failed"),
    ("expired", "Expired"),
]


def printable(text):
    """``text`` as PostgreSQL stores it: no NUL character (a request may hold any).

    >>> printable("a\\x00b") == "a\\ufffdb"
    True
    """
    return text.replace("\x00", "\ufffd")


class ControlError(UserError):
    """A request the API answers with ``http_status`` (404: no such node or process; 409: refused)."""

    def __init__(self, message, http_status=409):
        super().__init__(message)
        self.http_status = http_status


class AsyncLabControl(models.Model):
    _name = "async_lab.control"
    _description = "Server control action"
    _order = "id desc"

    name = fields.Char(compute="_compute_name")
    action = fields.Selection(
        [(key, label) for key, (label, _needs) in control.ACTIONS.items()], required=True, readonly=True
    )
    state = fields.Selection(STATES, default="pending", required=True, readonly=True, index=True)
    node = fields.Char(readonly=True, help="The node (one Odoo master) as the dashboard and the advisor name it.")
    # Empty only on a request refused before its node was known (_record_refusal).
    host = fields.Char(readonly=True, index=True)
    master_pid = fields.Integer("Master PID", readonly=True, group_operator=False)
    master_create_time = fields.Float(readonly=True, group_operator=False)
    pid = fields.Integer("PID", readonly=True, group_operator=False, help="The worker signalled.")
    create_time = fields.Float("Process create time", readonly=True, group_operator=False)
    worker_id = fields.Many2one("async_lab.worker", "Process", readonly=True, ondelete="set null", index=True)
    master_worker_id = fields.Many2one("async_lab.worker", "Master", readonly=True, ondelete="set null", index=True)
    user_id = fields.Many2one("res.users", "Requested by", readonly=True, default=lambda self: self.env.uid)
    requested_at = fields.Datetime(readonly=True, default=fields.Datetime.now)
    started_at = fields.Datetime(readonly=True)
    done_at = fields.Datetime(readonly=True)
    executed_by_pid = fields.Integer("Carried out by PID", readonly=True, group_operator=False)
    result = fields.Char(readonly=True)
    error = fields.Char(readonly=True)
    respawn_id = fields.Many2one("async_lab.respawn", compute="_compute_respawn_id")
    burst_id = fields.Many2one("async_lab.burst", readonly=True, ondelete="set null", index="btree_not_null")
    job_count = fields.Integer("Jobs", readonly=True, group_operator=False, help="Jobs requeued or cancelled.")

    @api.depends("action", "pid", "node", "burst_id")
    def _compute_name(self):
        labels = dict(self._fields["action"].selection)
        for rec in self:
            rec.name = "%s %s" % (labels.get(rec.action, rec.action), rec.pid or rec.node or rec.burst_id.name or "")

    def _compute_respawn_id(self):
        Respawn = self.env["async_lab.respawn"]
        for rec in self:
            rec.respawn_id = (
                Respawn.search([("old_worker_id", "=", rec.worker_id.id)], limit=1) if rec.worker_id else False
            )

    # ------------------------------------------------------------------
    # Requesting
    # ------------------------------------------------------------------
    @api.model_create_multi
    def create(self, vals_list):
        """Validate each request against the registry; only ``action``, ``node`` and ``pid`` are taken."""
        if not self.env.su and not self.env.user.has_group(GROUP_MANAGER):
            raise AccessError(_("Only Async Lab managers may control the server."))
        records = super().create([self._prepare(vals) for vals in vals_list])
        # The database's clock, which every node's expiry compares with (not this host's).
        records.flush_recordset()
        self.env.cr.execute(
            "UPDATE async_lab_control SET requested_at = now() AT TIME ZONE 'UTC' WHERE id IN %s", [tuple(records.ids)]
        )
        records.invalidate_recordset(["requested_at"])
        return records

    @api.model
    def _prepare(self, vals):
        action, node, pid = vals.get("action"), vals.get("node"), vals.get("pid")
        if action not in control.ACTIONS:
            raise ValidationError(_("action must be one of: %(actions)s", actions=", ".join(control.ACTIONS)))
        if action in control.BURST_ACTIONS:
            raise ValidationError(
                _(
                    "%(action)s is done at once: use the burst's buttons or POST /async_lab/control with a burst_id",
                    action=action,
                )
            )
        if node is not None and not isinstance(node, str):
            raise ValidationError(_("node must be a string (a node's name, as the dashboard shows it)"))
        if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)):
            raise ValidationError(_("pid must be an integer"))
        if pid is not None and not 0 < pid <= MAX_PID:
            raise ValidationError(_("pid must be a process id, from 1 to %(max)s", max=MAX_PID))
        nodes = self.env["async_lab.advisor"]._nodes()
        if node is not None and node not in nodes:
            raise ControlError(
                _("No live node %(node)s; live nodes: %(nodes)s", node=node, nodes=", ".join(sorted(nodes)) or "none"),
                404,
            )
        Worker = self.env["async_lab.worker"].sudo()
        if control.ACTIONS[action][1] == "pid":
            if not pid:
                raise ValidationError(_("pid is required for %(action)s", action=action))
            target = self._target(Worker, pid, nodes.get(node))
            host, master_pid = target.host, target.master_pid
            label = next((k for k, n in nodes.items() if (n["host"], n["master_pid"]) == (host, master_pid)), None)
            extra = {"pid": pid, "create_time": target.create_time, "worker_id": target.id}
        else:
            if pid is not None:
                raise ValidationError(_("%(action)s takes a node, not a pid", action=action))
            if node is None:
                raise ValidationError(
                    _(
                        "node is required for %(action)s; live nodes: %(nodes)s",
                        action=action,
                        nodes=", ".join(sorted(nodes)) or "none",
                    )
                )
            label, host, master_pid = node, nodes[node]["host"], nodes[node]["master_pid"]
            configured = nodes[node]["conf"].get("workers") or 0
            if not configured:
                raise ControlError(
                    _("Node %(node)s runs in threaded mode (workers = 0): it has no HTTP workers to change.", node=node)
                )
            extra = {}
        master = Worker.search(
            [("host", "=", host), ("pid", "=", master_pid), ("role", "=", "master"), ("state", "!=", "gone")]
        )
        if len(master) > 1:
            raise ControlError(
                _(
                    "Two live masters have PID %(pid)s on host %(host)s (containers sharing a host name?): "
                    "give each its own async_lab_node, or its own host name.",
                    pid=master_pid,
                    host=host,
                )
            )
        if not master:
            raise ControlError(
                _(
                    "The master %(pid)s of this node is not in the registry yet; try again in a few seconds.",
                    pid=master_pid,
                )
            )
        if not extra:  # a node's HTTP worker count as the registry sees it, and the requests on their way
            population = self._population(host, master_pid, master.create_time)
            try:
                control.population_after(action, population, configured, self._max_extra())
            except control.Refused as exc:
                raise ControlError(str(exc)) from exc
        return dict(
            extra,
            action=action,
            node=label,
            host=host,
            master_pid=master_pid,
            master_create_time=master.create_time,
            master_worker_id=master.id,
            user_id=self.env.uid,
            state="pending",
        )

    @api.model
    def _record_refusal(self, action, node, pid, error, uid):
        """Keep a request the API refused (``POST /async_lab/control``: 400, 403, 404, 409), done at once.

        A plain INSERT, never ``create``: the row skips the checks that
        refused it, and nothing can ever carry it out (it is not *pending*).
        """
        pid = pid if isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid <= MAX_PID else None
        node = printable(node[:200]) if isinstance(node, str) else None
        error = printable(error[:1000])
        record = self._insert_log(action=action, state="refused", node=node, pid=pid, error=error, uid=uid)
        _logger.warning("server control %s (%s) by uid %s refused: %s", record.id, action, uid, error)
        return record

    @api.model
    def _insert_log(self, *, action, state, uid, **values):
        """Insert a row of the log that no node carries out (never *pending*), done now."""
        columns = ["action", "state", "user_id", *values]
        self.flush_model()
        self.env.cr.execute(
            SQL(
                """INSERT INTO async_lab_control (%s, requested_at, done_at, create_uid, write_uid,
                                                  create_date, write_date)
                   VALUES (%s, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC', %s, %s,
                           now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')
                   RETURNING id""",
                SQL(", ").join(SQL.identifier(c) for c in columns),
                SQL(", ").join(SQL("%s", v) for v in [action, state, uid, *values.values()]),
                uid,
                uid,
            )
        )
        return self.browse(self.env.cr.fetchone()[0])

    @api.model
    def _target(self, Worker, pid, node):
        """The live registry row of ``pid`` (on ``node`` if given) that a recycle or a kill may target."""
        domain = [("pid", "=", pid), ("state", "=", "alive")]
        if node:
            domain += [("host", "=", node["host"]), ("master_pid", "=", node["master_pid"])]
        rows = Worker.search(domain)
        if not rows:
            raise ControlError(_("No live Odoo process %(pid)s in the registry of this database.", pid=pid), 404)
        if len(rows) > 1:
            raise ValidationError(_("PID %(pid)s runs on several nodes: say which with node.", pid=pid))
        if rows.role == "master" or rows.pid == rows.master_pid:
            raise ControlError(_("PID %(pid)s is a master: it is never signalled.", pid=pid))
        if rows.role not in control.TARGET_ROLES:
            raise ControlError(
                _(
                    "PID %(pid)s is a %(role)s process: only HTTP and cron workers can be recycled or killed.",
                    pid=pid,
                    role=rows.role,
                )
            )
        return rows

    @api.model
    def _node_label(self, host, master_pid):
        """The label of the live node (host, master_pid), as the advisor and the dashboard name it; None if not live."""
        nodes = self.env["async_lab.advisor"]._nodes()
        return next((k for k, n in nodes.items() if (n["host"], n["master_pid"]) == (host, master_pid)), None)

    @api.model
    def _max_extra(self):
        return self.env["ir.config_parameter"]._async_lab_int(MAX_EXTRA_PARAM)

    @api.model
    def _population(self, host, master_pid, master_create_time):
        """The HTTP worker count a request is checked against: the master's
        live HTTP workers in the registry, plus the additions and minus the
        removals not carried out yet. (The node counts its real children
        again when it acts.)"""
        self.flush_model()
        self.env.cr.execute(
            """SELECT (SELECT count(*) FROM async_lab_worker
                        WHERE host = %(host)s AND master_pid = %(master)s AND role = 'http' AND state != 'gone')
                    + (SELECT count(*) FILTER (WHERE action = 'add_http_worker')
                            - count(*) FILTER (WHERE action = 'remove_http_worker')
                         FROM async_lab_control
                        WHERE host = %(host)s AND master_pid = %(master)s AND state IN ('pending', 'running')
                          AND abs(master_create_time - %(created)s) < %(tolerance)s)""",
            {
                "host": host,
                "master": master_pid,
                "created": master_create_time,
                "tolerance": control.CREATE_TIME_TOLERANCE,
            },
        )
        return self.env.cr.fetchone()[0]

    @api.model
    def api_request(self, action, node=None, pid=None, burst_id=None):
        """``POST /async_lab/control``: the recorded request (202, to poll).

        A process action waits for its node; an action on a burst's jobs is
        done at once, and recorded done.
        """
        if action in control.BURST_ACTIONS:
            if node is not None or pid is not None:
                raise ValidationError(_("%(action)s takes a burst_id, not a node or a pid", action=action))
            if burst_id is None:
                raise ValidationError(_("burst_id is required for %(action)s", action=action))
            if isinstance(burst_id, bool) or not isinstance(burst_id, int) or not 0 < burst_id < 2**31:
                raise ValidationError(_("burst_id must be a burst's id, a positive integer"))
            burst = self.env["async_lab.burst"].browse(burst_id).exists()
            if not burst:
                raise ControlError(_("No burst %(id)s.", id=burst_id), 404)
            return burst._jobs_action(action)
        if burst_id is not None:
            raise ValidationError(_("%(action)s takes a node or a pid, not a burst_id", action=action))
        return self.create({"action": action, "node": node, "pid": pid})

    @api.model
    def _log_burst_action(self, action, burst, count, message):
        """Record an action on a burst's jobs, done: who, which burst, how many jobs, when."""
        return self._insert_log(
            action=action, state="done", burst_id=burst.id, job_count=count, result=message, uid=self.env.uid
        )

    def api_status(self):
        self.ensure_one()
        return {
            "id": self.id,
            "action": self.action,
            "state": self.state,
            "node": self.node or None,
            "host": self.host or None,
            "master_pid": self.master_pid or None,
            "pid": self.pid or None,
            "burst_id": self.burst_id.id or None,
            "job_count": self.job_count if self.action in control.BURST_ACTIONS else None,
            "requested_by": self.user_id.login,
            "requested_at": fields.Datetime.to_string(self.requested_at) if self.requested_at else None,
            "started_at": fields.Datetime.to_string(self.started_at) if self.started_at else None,
            "done_at": fields.Datetime.to_string(self.done_at) if self.done_at else None,
            "executed_by_pid": self.executed_by_pid or None,
            "result": self.result or None,
            "error": self.error or None,
            "respawn": self.respawn_id
            and {
                "old_pid": self.respawn_id.old_pid,
                "new_pid": self.respawn_id.new_pid,
                "reason": self.respawn_id.reason,
            }
            or None,
        }

    # ------------------------------------------------------------------
    # Carrying out, in the node's own processes
    # ------------------------------------------------------------------
    # Three steps, each its own transaction in a heartbeat
    # (process_tracker.carry_out_controls): the claim commits the rows as
    # *running* before any signal, the signals are sent once (never in a
    # transaction that a retry would run again), then the outcome is
    # recorded. A row left *running* (its process died in between) ends
    # *failed* with an unknown outcome, never signalled twice.
    @api.model
    def _run_pending(self, host, master_pid, now=None):
        """The three steps in one transaction (tests, and the shell). Return how many were handled."""
        ids = self._claim_pending(host, master_pid, now)
        for rec in self.browse(ids):
            rec._record(rec._act())
        return len(ids)

    @api.model
    def _claim_pending(self, host, master_pid, now=None, master_create_time=None):
        """Expire what waited too long, then mark this node's next pending actions
        *running* for this process; return their ids.

        One process of a node claims at a time (an advisory lock), and at most
        one change of the HTTP worker count per claim, none while another is
        still running: the next one counts the workers after it. With
        ``master_create_time``, rows of another master that has the same host
        name and PID (two containers sharing the host's network, each with
        its master as PID 1) are left to it.
        """
        cr = self.env.cr
        now = now or time.time()
        self.flush_model()
        # The database's clock, not this host's: requested_at came from another node's.
        cr.execute(
            """UPDATE async_lab_control
                  SET state = CASE state WHEN 'pending' THEN 'expired' ELSE 'failed' END,
                      done_at = now() AT TIME ZONE 'UTC',
                      error = CASE state WHEN 'pending' THEN %s ELSE %s END
                WHERE id IN (SELECT id FROM async_lab_control
                              WHERE (state = 'pending'
                                     AND requested_at < now() AT TIME ZONE 'UTC' - %s * interval '1 s')
                                 OR (state = 'running'
                                     AND started_at < now() AT TIME ZONE 'UTC' - %s * interval '1 s')
                                FOR UPDATE SKIP LOCKED)""",
            [
                "No process of the node picked it up within %d s (the node stopped reporting)."
                % control.PENDING_TIMEOUT,
                "Outcome unknown: the process carrying it out stopped before recording it "
                "(see the process tree, and the server's log).",
                control.PENDING_TIMEOUT,
                control.PENDING_TIMEOUT,
            ],
        )
        cr.execute("SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))", [CONTROL_LOCK, "%s:%s" % (host, master_pid)])
        if not cr.fetchone()[0]:
            return []  # another process of this node is claiming
        cr.execute(
            """SELECT id, action, pid FROM async_lab_control
                WHERE state = 'pending' AND host = %s AND master_pid = %s
                  AND (%s::float IS NULL OR abs(master_create_time - %s) < %s)
                ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED""",
            [
                host,
                master_pid,
                master_create_time,
                master_create_time,
                control.CREATE_TIME_TOLERANCE,
                ACTIONS_PER_BEAT,
            ],
        )
        # A kill of this very process last: the others are carried out first.
        rows = sorted(cr.fetchall(), key=lambda row: row[2] == os.getpid())
        cr.execute(
            """SELECT 1 FROM async_lab_control WHERE state = 'running' AND host = %s AND master_pid = %s
                  AND action IN %s""",
            [host, master_pid, POPULATION_ACTIONS],
        )
        count_changing = bool(cr.fetchone())
        ids = []
        for row_id, action, _pid in rows:
            if action in POPULATION_ACTIONS:
                if count_changing:
                    continue  # the next claim takes it
                count_changing = True
            ids.append(row_id)
        if ids:
            cr.execute(
                """UPDATE async_lab_control SET state = 'running', started_at = now() AT TIME ZONE 'UTC',
                          executed_by_pid = %s WHERE id IN %s""",
                [os.getpid(), tuple(ids)],
            )
            self.invalidate_model(["state", "started_at", "executed_by_pid"])
        self.invalidate_model(["state", "done_at", "error"])  # the expiry above
        return ids

    def _act(self):
        """Check the processes again, then signal: the values that record the outcome.

        Called once per claimed row, in a transaction that is never retried.
        """
        self.ensure_one()
        own = os.getpid()
        # Still this process's to carry out (the lock keeps the expiry off the row while it signals).
        self.env.cr.execute("SELECT state, executed_by_pid FROM async_lab_control WHERE id = %s FOR UPDATE", [self.id])
        if self.env.cr.fetchone() != ("running", own):
            return None
        try:
            master = self._checked_master()
            if self.action in ("recycle", "kill"):
                self._checked_target(self.pid, self.create_time, master)
                if self.pid == own and self.action == "kill":
                    # Record it first: this very process is about to die (its last action: claimed last).
                    self._record(
                        self._outcome(
                            _("SIGKILL sent to PID %(pid)s (this process): the master forks a new one.", pid=own)
                        )
                    )
                    # The record must outlive this process, killed on the next line.
                    # pylint: disable-next=invalid-commit
                    self.env.cr.commit()
                os.kill(self.pid, control.SIGNALS[self.action][1])
                return self._outcome(
                    _(
                        "SIGINT sent to PID %(pid)s: it finishes its request, then the master forks a new one.",
                        pid=self.pid,
                    )
                    if self.action == "recycle"
                    else _("SIGKILL sent to PID %(pid)s: the master forks a new one.", pid=self.pid)
                )
            return self._change_population(master)
        except control.Refused as exc:
            _logger.warning("server control %s (%s) refused: %s", self.id, self.action, exc)
            return {"state": "refused", "error": str(exc)}
        except OSError as exc:
            _logger.warning("server control %s (%s) failed: %s", self.id, self.action, exc)
            return {"state": "failed", "error": str(exc)}

    @staticmethod
    def _outcome(message, **vals):
        return dict(vals, state="done", result=message)

    def _record(self, outcome):
        """Write the outcome of a running action (once: a recorded one stays as it is).

        ``outcome`` None: :meth:`_act` found the row no longer this process's, and did nothing.
        """
        self.ensure_one()
        if outcome is None:
            return False
        self.flush_recordset()
        self.env.cr.execute("SELECT state FROM async_lab_control WHERE id = %s FOR UPDATE", [self.id])
        row = self.env.cr.fetchone()
        if not row or row[0] != "running":
            return False
        self.write(dict(outcome, done_at=utcnow()))
        if outcome["state"] == "done":
            self.env["async_lab.stats"]._notify_dashboard("control", {"control_id": self.id})
            _logger.info(
                "server control %s by %s: %s (%s)", self.id, self.user_id.login, self.action, outcome["result"]
            )
        return True

    def _checked_master(self):
        """The node's master, as the checks read it, if it is the recorded one and this process's parent."""
        if self.host != socket.gethostname():
            raise control.Refused("this action belongs to host %s" % self.host)
        try:
            master = control.describe(psutil.Process(self.master_pid))
        except psutil.Error:
            master = None
        own_parent, own_cmdline = self._acting_process()
        control.check_master(
            master,
            expected_pid=self.master_pid,
            expected_create_time=self.master_create_time,
            own_parent=own_parent,
            own_cmdline=own_cmdline,
            own_pid=os.getpid(),
        )
        return master

    @api.model
    def _acting_process(self):
        """``(parent PID, command line)`` of this process, which acts for its master."""
        return os.getppid(), psutil.Process().cmdline()

    @staticmethod
    def _checked_target(pid, create_time, master):
        try:
            target = control.describe(psutil.Process(pid))
        except psutil.Error:
            target = None
        control.check_target(target, expected_pid=pid, expected_create_time=create_time, master=master)

    def _removed(self):
        """``(pid, create_time)`` of the HTTP workers removals of this master told to stop.

        Such a worker may still finish its request (up to ``limit_time_real``)
        but the master no longer counts it: it is never counted again, nor
        stopped twice, as long as it lives (a reused PID is another process).
        """
        rows = self.search_read(
            [
                ("host", "=", self.host),
                ("master_pid", "=", self.master_pid),
                ("action", "=", "remove_http_worker"),
                ("state", "=", "done"),
                ("pid", "!=", 0),
            ],
            ["pid", "create_time"],
        )
        return [(r["pid"], r["create_time"]) for r in rows]

    def _recently_signalled(self):
        """PIDs of this master recycled or killed in the last minute: the master replaces them."""
        return self.search(
            [
                ("host", "=", self.host),
                ("master_pid", "=", self.master_pid),
                ("action", "in", ("recycle", "kill")),
                ("state", "=", "done"),
                ("done_at", ">", utcnow() - timedelta(seconds=control.PENDING_TIMEOUT)),
            ]
        ).mapped("pid")

    def _http_workers_now(self, master, removed):
        """``(surely, at_most)`` HTTP workers of the master right now (``lib/control.http_workers_now``):
        its children as psutil sees them, the registry's roles for them, without the ``removed`` ones."""
        try:
            children = [control.describe(child) for child in psutil.Process(master["pid"]).children()]
        except psutil.Error as exc:
            raise control.Refused("master %s is not running" % master["pid"]) from exc
        rows = self.env["async_lab.worker"].search_read(
            [("host", "=", self.host), ("master_pid", "=", self.master_pid), ("state", "!=", "gone")],
            ["pid", "create_time", "role"],
        )
        registered = [(r["pid"], r["create_time"], r["role"]) for r in rows]
        return control.http_workers_now(children, master, registered, removed=removed)

    def _change_population(self, master):
        """SIGTTIN, or SIGTTOU then SIGINT to one HTTP worker, within the caps, as counted now.

        The count is the master's real HTTP children at this moment, not the
        sum of past actions: a reload resets the master's count, and another
        database's controls change it too.
        """
        configured = config["workers"]
        removed = self._removed()
        surely, at_most = self._http_workers_now(master, removed)
        if self.action == "add_http_worker":
            after = control.population_after(self.action, at_most, configured, self._max_extra())
            os.kill(self.master_pid, signal.SIGTTIN)
            return self._outcome(
                _(
                    "SIGTTIN sent to master %(pid)s: %(before)s → %(after)s HTTP workers.",
                    pid=self.master_pid,
                    before=at_most,
                    after=after,
                )
            )
        after = control.population_after(self.action, surely, configured, self._max_extra())
        victim = self._victim(master, removed)
        # The master lowers its target count first, so it does not replace the worker that leaves.
        os.kill(self.master_pid, signal.SIGTTOU)
        try:
            os.kill(victim.pid, signal.SIGINT)
        except OSError:
            # The master's count went down but no worker left: raise it back.
            os.kill(self.master_pid, signal.SIGTTIN)
            raise
        return self._outcome(
            _(
                "SIGTTOU sent to master %(pid)s, SIGINT to HTTP worker %(victim)s: "
                "%(before)s → %(after)s HTTP workers.",
                pid=self.master_pid,
                victim=victim.pid,
                before=surely,
                after=after,
            ),
            pid=victim.pid,
            create_time=victim.create_time,
            worker_id=victim.id,
        )

    def _victim(self, master, removed):
        """The HTTP worker a removal stops: an idle one first, the youngest first, not one already
        leaving (recycled or killed a moment ago, or one of the ``removed``)."""
        candidates = self.env["async_lab.worker"].search(
            [
                ("host", "=", self.host),
                ("master_pid", "=", self.master_pid),
                ("role", "=", "http"),
                ("state", "=", "alive"),
                ("pid", "not in", self._recently_signalled()),
            ]
        )
        for worker in candidates.sorted(lambda w: (bool(w.busy_since), -w.create_time)):
            if control.was_removed(worker.pid, worker.create_time, removed):
                continue  # told to stop already, still finishing its request
            try:
                self._checked_target(worker.pid, worker.create_time, master)
            except control.Refused:
                continue
            return worker
        raise control.Refused("no HTTP worker of master %s can be stopped now" % self.master_pid)
