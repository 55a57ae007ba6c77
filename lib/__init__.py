# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Pure Python helpers of Async Lab.

Nothing here imports ``odoo.api``, an environment or a cursor: inputs such as
the current time, configuration and rows are passed in, so every function can
be tested without a database.
"""
