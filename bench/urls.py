"""The app's URLs plus reference views the benchmarks compare against, in the same run.

- ``bench/hello``: a Django view that touches nothing (the ceiling of the stack).
- ``bench/insert``: one ``INSERT … ON CONFLICT DO NOTHING`` of a webhook row.
- ``bench/insert-enqueue``: the same insert plus one enqueue on the shared broker: the
  bare minimum any webhook ingest must do (DESIGN.md §8's baseline).
"""

import uuid

from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from integrations.inbox import Incoming, store_event
from otto.queues import Queue, enqueue, task


@task
def noop(event_id: int) -> None:
    """What the baseline enqueues; nothing consumes it during a run."""


@csrf_exempt
def hello(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"hello": "world"})


def _insert(request: HttpRequest) -> int:
    incoming = Incoming(event_type="bench", dedupe_key=uuid.uuid4().hex)
    event_id, _ = store_event("bench", incoming, {}, request.body)
    return event_id


@csrf_exempt
def insert(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"id": _insert(request)})


@csrf_exempt
def insert_enqueue(request: HttpRequest) -> JsonResponse:
    event_id = _insert(request)
    enqueue(Queue.DEFAULT, noop, event_id)
    return JsonResponse({"id": event_id})


urlpatterns = [
    path("bench/hello", hello),
    path("bench/insert", insert),
    path("bench/insert-enqueue", insert_enqueue),
    path("", include("otto.urls")),
]
