"""What calls tells the layers above about writes that go around ``save()``.

``call_changed`` is sent after a queryset ``update()`` changed a call's start, answer or
handler (the fields the KPIs count by): ``call`` is the row as it is now, ``started``
every start time it had in the change (the old one too, when ingest moved it). A save,
a create or a delete is a model signal already and is not sent again.
"""

from __future__ import annotations

from django.dispatch import Signal

call_changed = Signal()
