# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Expected, handled conditions are not ERRORs with a traceback.

In prefork mode the web client opens ``/websocket`` on the HTTP port unless a
proxy routes that path to ``gevent_port``. A dev server (``make run``) has no
such proxy, so every page load has an HTTP worker refuse the upgrade: the bus
raises ``RuntimeError("Couldn't bind the websocket...")`` and ``odoo.http``
logs it as "Exception during request handling." with a full traceback.
Nothing is broken: the client falls back to polling, and the fix belongs to
the deployment (the proxy), not to the code. So this filter, on the
``odoo.http`` logger only, turns that one exact message into one WARNING line
per process, without traceback, that says what to do; the repeats are
dropped unless ``odoo.http`` logs at DEBUG. Every other record passes
untouched.
"""

import logging

WEBSOCKET_BIND = "Couldn't bind the websocket"
LOGGER = "odoo.http"


class WebsocketBindFilter(logging.Filter):
    def __init__(self):
        super().__init__()
        self.seen = 0

    def filter(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        if not (isinstance(exc, RuntimeError) and str(exc).startswith(WEBSOCKET_BIND)):
            return True
        self.seen += 1
        if self.seen > 1 and not logging.getLogger(LOGGER).isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = (logging.WARNING, "WARNING") if self.seen == 1 else (logging.DEBUG, "DEBUG")
        record.msg = "%s (the web client falls back to polling; route /websocket to gevent_port in the proxy)%s"
        record.args = (exc, "; further ones are logged at DEBUG" if self.seen == 1 else "")
        record.exc_info = record.exc_text = None
        return True


def install():
    """Add the filter to ``odoo.http`` once per process."""
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(f, WebsocketBindFilter) for f in logger.filters):
        logger.addFilter(WebsocketBindFilter())
