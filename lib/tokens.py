# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Short-lived signed tokens for the addon's calls to itself.

The ``io_http`` workload calls the addon's own ``/async_lab/io`` endpoint
from inside a job, where there is no session cookie. It signs the call with
an HMAC of the database secret instead, valid for a bounded time.

>>> token = sign("s3cret", "io", now=1000.0, ttl=60)
>>> verify("s3cret", "io", token, now=1059.0)
True
>>> verify("s3cret", "io", token, now=1061.0)  # expired
False
>>> verify("other", "io", token, now=1001.0), verify("s3cret", "cpu", token, now=1001.0)
(False, False)
>>> verify("s3cret", "io", "garbage", now=1001.0)
False
"""

import hashlib
import hmac


def _mac(secret, scope, expires):
    return hmac.new(secret.encode(), ("%s:%d" % (scope, expires)).encode(), hashlib.sha256).hexdigest()


def sign(secret, scope, *, now, ttl):
    expires = int(now + ttl)
    return "%d.%s" % (expires, _mac(secret, scope, expires))


def verify(secret, scope, token, *, now):
    try:
        expires_text, mac = (token or "").split(".", 1)
        expires = int(expires_text)
    except ValueError:
        return False
    return now <= expires and hmac.compare_digest(mac, _mac(secret, scope, expires))
