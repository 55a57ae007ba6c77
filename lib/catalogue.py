# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The lab's catalogue: the workloads that bursts and experiments offer, the
queue_job channels they run on, and the parameters users set.

The workloads themselves (their functions, parameter bounds and cost models)
are :data:`.workloads.WORKLOADS`. This module says how the addon offers them:

- the channels of ``data/queue_job_channel_data.xml``, and the one a
  workload's jobs run on by default (:func:`default_channel`), or an
  experiment's tasks (:func:`lab_channel`);
- :data:`PARAM_FIELDS`, the parameters a user sets, each stored in the
  field of that name (``async_lab.workload.mixin``);
- what the server supplies itself and never takes from users
  (:func:`internal_params`, :func:`self_call_url`);
- :func:`clean_params`, the check of a user's parameters.

>>> default_channel("io_sleep"), default_channel("cpu_python"), lab_channel("cpu_python")
('root.async_lab.io', 'root.async_lab.cpu', 'root.async_lab.cpu')
>>> clean_params("io_sleep", {"ms": "250"})
{'ms': 250}
"""

from . import workloads

CHANNEL_ROOT = "root.async_lab"
CHANNEL_IO = "root.async_lab.io"
CHANNEL_CPU = "root.async_lab.cpu"
CHANNEL_SERIAL = "root.async_lab.serial"
#: The lab's channels, as a selection (the burst's ``channel`` field).
CHANNELS = [
    (CHANNEL_IO, "I/O (root.async_lab.io)"),
    (CHANNEL_CPU, "CPU (root.async_lab.cpu)"),
    (CHANNEL_SERIAL, "Serial, one at a time (root.async_lab.serial)"),
    (CHANNEL_ROOT, "Async Lab (root.async_lab)"),
]
#: The channel a burst of each kind of workload runs on unless told otherwise.
DEFAULT_CHANNEL_BY_KIND = {
    workloads.KIND_IO: CHANNEL_IO,
    workloads.KIND_CPU_GIL: CHANNEL_CPU,
    workloads.KIND_CPU_NOGIL: CHANNEL_CPU,
    workloads.KIND_CONTROL: CHANNEL_ROOT,
}
#: Workload parameters a user sets, each stored in the field of that name.
PARAM_FIELDS = ("ms", "n", "mb", "k")
#: Workload parameters the job sets itself at run time (flaky's attempt).
RUNTIME_PARAMS = frozenset({"attempt"})
DEFAULT_WORKLOAD = "io_sleep"


def workload_selection():
    """The workloads, as the selection of a ``workload`` field.

    >>> workload_selection()[0]
    ('io_sleep', 'io_sleep: time.sleep (asyncio.sleep under asyncio)')
    """
    return [(name, "%s: %s" % (name, spec.summary)) for name, spec in workloads.WORKLOADS.items()]


def param_default(name):
    """The default of parameter ``name``: that of the first workload taking it, else 0.

    >>> param_default("ms"), param_default("k"), param_default("nothing")
    (100, 2, 0)
    """
    for spec in workloads.WORKLOADS.values():
        for param in spec.params:
            if param.name == name and param.default is not None:
                return param.default
    return 0


def default_channel(workload):
    """The channel of a burst of ``workload``, unless the user picks another."""
    return DEFAULT_CHANNEL_BY_KIND[workloads.WORKLOADS[workload].kind]


def lab_channel(workload):
    """The channel of an experiment's queue_job tasks: I/O waits in the I/O
    channel, anything else on the CPU channel (experiments refuse control
    workloads)."""
    return CHANNEL_IO if workloads.WORKLOADS[workload].kind == workloads.KIND_IO else CHANNEL_CPU


def internal_params(workload):
    """The parameters of ``workload`` that the server or the job sets, never the caller.

    >>> sorted(internal_params("io_http")), sorted(internal_params("flaky"))
    (['attempt', 'url'], ['attempt'])
    """
    return frozenset(workloads.WORKLOADS[workload].settings) | RUNTIME_PARAMS


def user_workloads():
    """The workloads whose parameters users set all of (flaky's attempt is the job's).

    >>> "io_sleep" in user_workloads(), "flaky" in user_workloads()
    (True, False)
    """
    return [name for name, spec in workloads.WORKLOADS.items() if all(p.name in PARAM_FIELDS for p in spec.params)]


def clean_params(workload, params, settings=None):
    """The user's ``params`` for ``workload``, validated, defaults filled,
    without what the server supplies.

    ``settings`` are the values the server supplies (URL, DSN: see
    :func:`internal_params`), needed to validate the whole call. Raise
    :class:`.workloads.WorkloadError` for an unknown workload or parameter, a
    value out of bounds, or a parameter that the server sets.

    >>> clean_params("flaky", {"k": 3})
    {'k': 3}
    >>> clean_params("io_http", {"ms": 5, "url": "http://example.com"})
    Traceback (most recent call last):
    ...
    odoo.addons.async_lab.lib.workloads.WorkloadError: io_http: url is set by the server, not by the caller
    """
    internal = internal_params(workload) if workload in workloads.WORKLOADS else RUNTIME_PARAMS
    forbidden = sorted(set(params or {}) & internal)
    if forbidden:
        raise workloads.WorkloadError(
            "%s: %s is set by the server, not by the caller" % (workload, ", ".join(forbidden))
        )
    cleaned = workloads.validate(workload, dict(params or {}, **(settings or {})))
    return {key: value for key, value in cleaned.items() if key not in internal}


def self_call_url(http_port, dbname, key):
    """The URL of the addon's slow endpoint that io_http tasks call, on this server.

    The ``key`` travels in the fragment, which is never sent: io_http signs
    each call with it, and sends the short-lived token in a header.

    >>> self_call_url(8069, "lab", "k3y")
    'http://127.0.0.1:8069/async_lab/io?db=lab#key=k3y'
    """
    return "http://127.0.0.1:%s/async_lab/io?db=%s#key=%s" % (http_port, dbname, key)
