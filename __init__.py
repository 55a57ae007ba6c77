# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from . import log_filters
from . import process_tracker
from . import models
from . import controllers
from .hooks import uninstall_hook


def post_load():
    process_tracker.patch_server()
    log_filters.install()
