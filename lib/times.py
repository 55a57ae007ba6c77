# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Time conversions of the addon, in one place.

Odoo stores Datetime fields as naive UTC; heartbeats and psutil count
seconds since the epoch (``time.time()``); the JSON the addon sends carries
ISO 8601 UTC strings.

>>> to_datetime(1700000000.5)
datetime.datetime(2023, 11, 14, 22, 13, 20, 500000)
>>> to_epoch(to_datetime(1700000000.5))
1700000000.5
>>> iso(to_datetime(1700000000)), iso(None)
('2023-11-14T22:13:20Z', None)
>>> minute_floor(to_datetime(1700000000.5))
datetime.datetime(2023, 11, 14, 22, 13)
"""

from datetime import datetime, timezone


def utcnow():
    """Naive UTC now *with* microseconds (``fields.Datetime.now()`` drops them,
    which would leave out what happened in the current second)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def to_datetime(ts):
    """Epoch seconds -> naive UTC datetime, as Odoo stores Datetime fields (None stays None)."""
    return datetime.fromtimestamp(ts, timezone.utc).replace(tzinfo=None) if ts else None


def to_epoch(dt):
    """Naive UTC datetime -> epoch seconds (None stays None)."""
    return dt.replace(tzinfo=timezone.utc).timestamp() if dt else None


def iso(dt):
    """Naive UTC datetime -> ISO 8601 with a ``Z`` (None stays None)."""
    return dt.isoformat() + "Z" if dt else None


def minute_floor(dt):
    """The start of ``dt``'s minute."""
    return dt.replace(second=0, microsecond=0)
