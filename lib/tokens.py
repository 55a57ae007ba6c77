# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Signed tokens for the addon's calls to itself, and scrubbing of URLs.

The ``io_http`` workload calls the addon's own ``/async_lab/io`` endpoint
from inside a job, where there is no session cookie. Each call carries a
token in the :data:`HEADER` header (never in the URL, which reaches access
logs and error texts). The token is an HMAC bound to

- the database: the key is derived from the database secret *and* name
  (:func:`derive_key`), so a token of one database is worthless on another;
- the call's parameters (``ms``): a token for 1 ms does not buy 10 s;
- a short lifetime: the call's own timeout, and never more than
  :data:`MAX_TTL` seconds whatever the signer asked.

>>> key = derive_key("s3cret", "db1")
>>> token = sign(key, "io", {"ms": 5}, now=1000.0, ttl=10)
>>> verify(key, "io", {"ms": 5}, token, now=1009.0)
True
>>> verify(key, "io", {"ms": 5}, token, now=1011.0)  # expired
False
>>> verify(key, "io", {"ms": 6}, token, now=1001.0)  # other parameters
False
>>> verify(derive_key("s3cret", "db2"), "io", {"ms": 5}, token, now=1001.0)  # other database
False
>>> verify(key, "cpu", {"ms": 5}, token, now=1001.0), verify(key, "io", {"ms": 5}, "garbage", now=1001.0)
(False, False)
>>> verify(key, "io", {"ms": 5}, sign(key, "io", {"ms": 5}, now=1000.0, ttl=3600), now=1001.0)  # too long-lived
False
>>> verify(key, "io", {"ms": 5}, "1001.é", now=1000.0)  # not ASCII: refused, no TypeError
False
"""

import hashlib
import hmac
import re

#: The HTTP header carrying a self-call's token.
HEADER = "X-Async-Lab-Token"
#: Longest lifetime of a token, in seconds: the longest self-call (10 s of
#: io_http) plus its timeout margin.
MAX_TTL = 20


def derive_key(secret, db):
    """The signing key of database ``db``, from its ``database.secret``."""
    return hmac.new(secret.encode(), ("async_lab.self_call:%s" % db).encode(), hashlib.sha256).hexdigest()


def _mac(key, scope, params, expires):
    message = "%s|%s|%d" % (scope, "&".join("%s=%s" % item for item in sorted(params.items())), expires)
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def sign(key, scope, params, *, now, ttl):
    """A token for one call of ``scope`` with ``params``, valid ``ttl`` seconds."""
    expires = int(now + ttl)
    return "%d.%s" % (expires, _mac(key, scope, params, expires))


def verify(key, scope, params, token, *, now):
    """Whether ``token`` signs this call, now; any malformed token is False."""
    try:
        expires_text, mac = (token or "").split(".", 1)
        expires = int(expires_text)
    except (TypeError, ValueError):
        return False
    if not now <= expires <= now + MAX_TTL:
        return False
    expected = _mac(key, scope, params, expires)
    # Bytes, not str: compare_digest refuses non-ASCII str with a TypeError.
    return hmac.compare_digest(mac.encode("utf-8", "replace"), expected.encode())


_USERINFO = re.compile(r"""(\b[a-z][a-z0-9+.-]*://)[^\s/@'"<>]*@""", re.I)
#: A URL, or a bare path as urllib3 quotes it ("with url: /x?y"), then its query string or fragment.
_URL_TAIL = re.compile(r"""(?P<keep>(?:\b[a-z][a-z0-9+.-]*://[^\s/?#'"<>]*)?/[^\s?#'"<>]*)[?#][^\s'"<>]*""", re.I)


def scrub_urls(text):
    """``text`` without the query strings, fragments and credentials of its URLs.

    Error texts quote the URL they failed on; query strings may hold tokens.

    >>> scrub_urls("Max retries exceeded with url: http://127.0.0.1:8069/async_lab/io?db=x&token=1.ab (x)")
    'Max retries exceeded with url: http://127.0.0.1:8069/async_lab/io?… (x)'
    >>> scrub_urls("GET https://user:pw@host/p#frag failed; see http://host/doc")
    'GET https://host/p?… failed; see http://host/doc'
    >>> scrub_urls("Max retries exceeded with url: /async_lab/io?db=x&ms=5 (Caused by ...)")
    'Max retries exceeded with url: /async_lab/io?… (Caused by ...)'
    >>> scrub_urls(None)
    """
    if not text:
        return text
    return _URL_TAIL.sub(r"\g<keep>?…", _USERINFO.sub(r"\1", text))
