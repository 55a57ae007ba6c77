# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from . import log_filters
from . import process_tracker
from . import models
from . import controllers
from .hooks import uninstall_hook


def post_load():
    """The manifest's post_load: every change to the server is in
    :func:`.process_tracker.patch_server`; the log filter is
    :func:`.log_filters.install`."""
    process_tracker.patch_server()
    log_filters.install()
