# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import _, api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import config

from ..lib import catalogue, tokens, workloads
from ..lib.catalogue import param_default


def bounded(name, value, minimum, maximum, *, exact=False):
    """``value`` as an int within bounds (:func:`.lib.workloads.clean_int`), or a ValidationError naming it.

    ``name`` is what the caller knows the value as: a parameter of a route,
    or the label of the field where a user typed it.
    """
    if value is None or value == "":
        raise ValidationError(
            _(
                "%(name)s is empty: enter a whole number between %(min)s and %(max)s.",
                name=name,
                min=minimum,
                max=maximum,
            )
        )
    try:
        return workloads.clean_int(name, value, minimum, maximum, exact=exact)
    except workloads.WorkloadError as exc:
        raise ValidationError(str(exc)) from exc


class AsyncLabWorkloadMixin(models.AbstractModel):
    """A workload and the parameters a user sets for it (lib/catalogue.py).

    Bursts and experiments inherit it: one field per parameter of
    :data:`~.lib.catalogue.PARAM_FIELDS`, checked against the workload's
    bounds, plus the values the server supplies to a task (never stored).
    """

    _name = "async_lab.workload.mixin"
    _description = "Async Lab workload and parameters"

    workload = fields.Selection(catalogue.workload_selection(), required=True, default=catalogue.DEFAULT_WORKLOAD)
    # The parameters are settings, not quantities: group rows add none of them.
    ms = fields.Integer(
        "Milliseconds",
        default=param_default("ms"),
        group_operator=False,
        help="io_sleep, io_http, io_db: how long each task waits (at most 10000).",
    )
    n = fields.Integer(
        "Iterations",
        default=param_default("n"),
        group_operator=False,
        help="cpu_python: loop iterations per task (at most 50,000,000).",
    )
    mb = fields.Integer(
        "MiB",
        default=param_default("mb"),
        group_operator=False,
        help="cpu_gil_free: MiB hashed per task (at most 4096).",
    )
    k = fields.Integer(
        "Failing attempts",
        default=param_default("k"),
        group_operator=False,
        help="flaky: attempts that fail before one succeeds (at most 10).",
    )

    @api.constrains("workload", *catalogue.PARAM_FIELDS)
    def _check_params(self):
        for rec in self:
            rec._clean_params(rec.workload, rec._user_params())

    def _user_params(self):
        """The workload's parameters as set on the record."""
        spec = workloads.WORKLOADS[self.workload]
        return {param.name: self[param.name] for param in spec.params if param.name in catalogue.PARAM_FIELDS}

    def _run_params(self):
        """The record's parameters, validated, plus the values the server supplies (URL, DSN)."""
        return self._call_params(self.workload, self._user_params())

    @api.model
    def _check_workload(self, name):
        if name not in workloads.WORKLOADS:
            raise ValidationError(
                _(
                    "Unknown workload %(name)r; choose one of: %(names)s",
                    name=name,
                    names=", ".join(workloads.WORKLOADS),
                )
            )

    @api.model
    def _clean_params(self, name, params):
        """User ``params`` for workload ``name``, validated (what a job may store); raise ValidationError."""
        self._check_workload(name)
        try:
            return catalogue.clean_params(name, params, self._workload_settings(name))
        except workloads.WorkloadError as exc:
            raise ValidationError(str(exc)) from exc

    @api.model
    def _call_params(self, name, params):
        """What a task of workload ``name`` is called with: ``params`` validated, plus the server's values."""
        return dict(self._clean_params(name, params), **self._workload_settings(name))

    @api.model
    def _workload_settings(self, name):
        """Values the server supplies to workload ``name``: never taken from users (no SSRF)."""
        settings = {}
        spec = workloads.WORKLOADS[name]
        if "url" in spec.settings:
            secret = self.env["ir.config_parameter"].sudo().get_param("database.secret")
            key = tokens.derive_key(secret, self.env.cr.dbname)
            settings["url"] = catalogue.self_call_url(config["http_port"], self.env.cr.dbname, key)
        if "dsn" in spec.settings:
            from odoo.sql_db import connection_info_for

            settings["dsn"] = connection_info_for(self.env.cr.dbname)[1]
        return settings
