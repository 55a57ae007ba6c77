# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
{
    "name": "Async Lab",
    "summary": "See and measure how Odoo does concurrent work: "
    "processes, workers, queue_job channels and concurrency experiments",
    "version": "17.0.1.6.0",
    "category": "Technical",
    "website": "https://github.com/async-lab/async_lab",
    "author": "Async Lab contributors",
    "license": "LGPL-3",
    "application": True,
    "installable": True,
    "depends": ["base", "web", "bus", "queue_job"],
    "external_dependencies": {"python": ["prometheus_client", "psutil", "requests"]},
    "uninstall_hook": "uninstall_hook",
    "post_load": "post_load",
    "data": [
        "security/async_lab_groups.xml",
        "security/ir.model.access.csv",
        "security/async_lab_rules.xml",
        "data/queue_job_channel_data.xml",
        "data/queue_job_function_data.xml",
        "data/ir_cron_data.xml",
        "views/queue_job_views.xml",
        "views/async_lab_worker_views.xml",
        "views/async_lab_respawn_views.xml",
        "views/async_lab_burst_views.xml",
        "views/async_lab_metric_views.xml",
        "views/async_lab_experiment_views.xml",
        "views/async_lab_actions.xml",
        "views/async_lab_menus.xml",
    ],
    "assets": {
        "web.assets_backend": ["async_lab/static/src/**/*"],
        "web.assets_tests": ["async_lab/static/tests/tours/**/*"],
        "web.qunit_suite_tests": ["async_lab/static/tests/qunit/**/*"],
    },
}
