# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
# Odoo's test loader imports only the modules listed here; tests/integration
# (multi-worker tests that start their own server) is run by pytest instead.
from . import test_lib_processes
from . import test_lib_strategies
from . import test_lib_theory
from . import test_lib_workloads
from . import test_api
from . import test_burst
from . import test_experiment
from . import test_security
from . import test_stats
from . import test_whoami
from . import test_worker
from . import test_dashboard
from . import test_views
