# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
# Odoo's test loader imports only the modules listed here; tests/integration
# (multi-worker tests that start their own server) is run by pytest instead.
from .common import refuse_unsafe_test_run
from . import test_lib_channels
from . import test_lib_catalogue
from . import test_lib_child
from . import test_lib_processes
from . import test_lib_strategies
from . import test_lib_theory
from . import test_lib_times
from . import test_lib_workloads
from . import test_lib_tokens
from . import test_lib_advisor
from . import test_lib_impact
from . import test_lib_i18n
from . import test_advisor
from . import test_why
from . import test_self_call
from . import test_api
from . import test_burst
from . import test_experiment
from . import test_security
from . import test_stats
from . import test_metrics
from . import test_whoami
from . import test_worker
from . import test_control
from . import test_heartbeat
from . import test_log_filters
from . import test_settings
from . import test_bounds
from . import test_dashboard
from . import test_deployment
from . import test_access
from . import test_fuzz
from . import test_views
from . import test_migrations
from . import test_i18n

# Before any test runs: a test run that would serve another database stops here.
refuse_unsafe_test_run()
