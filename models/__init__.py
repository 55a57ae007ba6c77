# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from . import async_lab_workload_mixin
from . import async_lab_worker
from . import async_lab_respawn
from . import async_lab_control
from . import async_lab_burst
from . import async_lab_metric
from . import async_lab_metrics
from . import async_lab_experiment
from . import async_lab_experiment_result
from . import async_lab_stats
from . import async_lab_dashboard
from . import async_lab_deployment
from . import async_lab_advisor
from . import ir_config_parameter
from . import ir_cron
from . import ir_http
from . import ir_websocket
from . import queue_job
