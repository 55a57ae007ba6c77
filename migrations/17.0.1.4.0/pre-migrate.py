# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""17.0.1.4.0: job methods renamed, one style for all (``_job_<what>``).

queue_job finds a job's method by the name stored in its row: the jobs
already stored (waiting, or kept as history, which the experiments' figures
read by method name) take the new names. ``data/queue_job_function_data.xml``
renames their job functions, under the same XML ids.
"""

RENAMED = [
    ("async_lab.burst", "_async_lab_task", "_job_task"),
    ("async_lab.burst", "_async_lab_reduce", "_job_reduce"),
    ("async_lab.experiment", "_job_calibrate", "_job_dispatch_probe"),
]


def migrate(cr, version):
    for model, old, new in RENAMED:
        cr.execute(
            """UPDATE queue_job
                  SET method_name = %(new)s,
                      channel_method_name = %(new_function)s,
                      func_string = replace(func_string, %(old_call)s, %(new_call)s)
                WHERE model_name = %(model)s AND method_name = %(old)s""",
            {
                "model": model,
                "old": old,
                "new": new,
                "new_function": "<%s>.%s" % (model, new),
                "old_call": ").%s(" % old,
                "new_call": ").%s(" % new,
            },
        )
