"""The admin's pipeline page (``/admin/calls/call/pipeline/``, linked from the admin index):
calls per stage, the last day's failures by error with a bulk retry, queue depths and
heartbeats, two server-rendered SVG charts, the webhook inbox's unmatched and failed
deliveries with a replay, and django-q's failed tasks linked to their call.

Staff only (Django's admin login). Seeing the page takes the permission to view calls; a
bulk retry takes the permission to change calls, as the calls admin's own retry does, and
goes through it (calls.retries, audited per call with the actor, each under its own
company); a replay takes the permission to change webhook events and calls the inbox's own
replay (integrations.services.replay_event). The reads are calls.ops.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST
from django_q.admin import FailAdmin as DjangoQFailAdmin
from django_q.models import Failure

from calls import ops
from integrations import services as inbox
from integrations.models import WebhookEvent
from otto.health import worker_state
from otto.queues import task_call_id

if TYPE_CHECKING:
    from calls.admin import CallAdmin

# Calls one bulk retry hands to calls.retries; a larger group takes another press.
RETRY_BATCH = 200

# The admin index links here (the template adds a "Pipeline" module above the apps).
admin.site.index_template = "admin/calls/site_index.html"


def urls(model_admin: CallAdmin) -> list[URLPattern]:
    """The page's routes, mounted by :class:`calls.admin.CallAdmin` under its own URLs."""

    def view(method: Callable[..., Any], func: Callable[..., HttpResponse]):
        def run(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            return func(model_admin, request, *args, **kwargs)

        return model_admin.admin_site.admin_view(method(run))

    return [
        path("pipeline/", view(require_GET, pipeline_view), name="calls_call_pipeline"),
        path("pipeline/retry/", view(require_POST, retry_view), name="calls_call_pipeline_retry"),
        path(
            "pipeline/replay/<int:event_id>/",
            view(require_POST, replay_view),
            name="calls_call_pipeline_replay",
        ),
    ]


def pipeline_url(anchor: str = "") -> str:
    return reverse("admin:calls_call_pipeline") + (f"#{anchor}" if anchor else "")


# --- the page ------------------------------------------------------------------------------


def pipeline_view(model_admin: CallAdmin, request: HttpRequest) -> HttpResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    now = timezone.now()
    since = now - ops.FAILURE_WINDOW
    changelist = reverse("admin:calls_call_changelist")
    stages = [
        (label, count, f"{changelist}?{urlencode({'stage__exact': value})}")
        for (value, label), count in zip(
            ops.Stage.choices, ops.stage_counts().values(), strict=True
        )
    ]
    groups = [
        {
            "group": group,
            "calls_url": changelist + "?" + urlencode(group_query(group.error, since)),
        }
        for group in ops.failure_groups(since)
    ]
    clusters, queues = worker_state()
    medians = ops.median_seconds_to_applied(now)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Pipeline",
        "opts": model_admin.model._meta,
        "now": now,
        "since": since,
        "stages": stages,
        "total_calls": sum(count for _, count, _ in stages),
        "groups": groups,
        "retry_batch": RETRY_BATCH,
        "tasks": ops.task_failures(since),
        "failed_tasks_url": reverse("admin:django_q_failure_changelist"),
        "clusters": clusters,
        "queues": queues,
        "per_hour": per_hour_chart(ops.calls_per_hour(now)),
        "to_applied": None if medians is None else to_applied_chart(medians),
        "inbox_counts": ops.inbox_problem_counts(),
        "inbox": ops.inbox_problems(),
        "can_retry": model_admin.has_change_permission(request),
        "can_replay": can_replay(request),
    }
    return TemplateResponse(request, "admin/calls/pipeline.html", context)


def group_query(error: str, since: datetime.datetime) -> dict[str, str]:
    """The calls changelist's query for one failure group."""
    return {
        "stage__exact": ops.Stage.FAILED,
        "stage_changed_at__gte": since.isoformat(),
        **ops.group_lookup(error),
    }


def can_replay(request: HttpRequest) -> bool:
    return request.user.has_perm("integrations.change_webhookevent")


# --- actions -------------------------------------------------------------------------------


def retry_view(model_admin: CallAdmin, request: HttpRequest) -> HttpResponse:
    """Retry one failure group: the calls failed since ``since`` with ``error``, still
    failed now, through the calls admin's audited retry (one call at a time)."""
    if not model_admin.has_change_permission(request):
        raise PermissionDenied
    since = parse_datetime(request.POST.get("since", ""))
    if since is None or timezone.is_naive(since) or "error" not in request.POST:
        return HttpResponseBadRequest("A failure group is its error and an aware 'since'.")
    calls = ops.failure_group_calls(request.POST["error"], since).select_related("company")
    batch = list(calls.order_by("stage_changed_at", "pk")[:RETRY_BATCH])
    if not batch:
        model_admin.message_user(request, "No call of that group is failed any more.")
    model_admin._retry(request, batch, from_stage=None)
    left = calls.count()
    if left:
        model_admin.message_user(
            request, f"{left} call(s) of that group are still failed; retry again for more."
        )
    return HttpResponseRedirect(pipeline_url("failures"))


def replay_view(model_admin: CallAdmin, request: HttpRequest, event_id: int) -> HttpResponse:
    if not can_replay(request):
        raise PermissionDenied
    event = get_object_or_404(WebhookEvent, pk=event_id)
    try:
        status = inbox.replay_event(event, actor=request.user)
    except inbox.ReplayRefused as exc:
        model_admin.message_user(request, f"Not replayed: {exc}", messages.ERROR)
    else:
        model_admin.message_user(request, f"Event {event.pk} replayed: {status}.")
    return HttpResponseRedirect(pipeline_url("inbox"))


# --- charts: bar geometry for the template's SVG -------------------------------------------


@dataclasses.dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: float
    title: str


@dataclasses.dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclasses.dataclass(frozen=True)
class Chart:
    """A bar chart, laid out: what ``admin/calls/bar_chart.html`` draws."""

    id: str
    title: str
    desc: str
    x_label: str
    y_label: str
    bars: list[Bar]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    width: int = 860
    height: int = 240
    left: int = 64
    right: int = 12
    top: int = 12
    bottom: int = 44

    @property
    def plot_right(self) -> int:
        return self.width - self.right

    @property
    def plot_bottom(self) -> int:
        return self.height - self.bottom

    @property
    def y_label_y(self) -> float:
        return self.top + (self.plot_bottom - self.top) / 2


def nice_scale(value: float) -> tuple[float, int]:
    """An axis for values up to ``value``: its top, the smallest 1, 2 or 5 × 10ⁿ at or
    above it, and how many grid steps divide it (whole ones for 2 × 10ⁿ too)."""
    if value <= 0:
        return 1, 1
    magnitude = 10 ** math.floor(math.log10(value))
    return next(
        (m * magnitude, steps)
        for m, steps in ((1, 5), (2, 4), (5, 5), (10, 5))
        if m * magnitude >= value
    )


def bar_chart(
    id: str,
    values: list[tuple[str, float | None]],
    *,
    title: str,
    desc: str,
    x_label: str,
    y_label: str,
    x_ticks: list[tuple[int, str]],
    fmt: Callable[[float], str],
    integer: bool = False,
) -> Chart:
    """Lay out ``values`` (a title per bar; None or 0 draws no bar) on a shared axis."""
    chart = Chart(id, title, desc, x_label, y_label, [], [], [])
    top, steps = nice_scale(max((v or 0 for _, v in values), default=0))
    plot_w = chart.plot_right - chart.left
    plot_h = chart.plot_bottom - chart.top
    step = plot_w / max(len(values), 1)
    gap = 1 if step < 8 else step * 0.2
    bars = []
    for i, (label, value) in enumerate(values):
        if not value:
            continue
        height = plot_h * value / top
        bars.append(
            Bar(
                x=round(chart.left + i * step + gap / 2, 2),
                y=round(chart.plot_bottom - height, 2),
                width=round(step - gap, 2),
                height=round(height, 2),
                value=value,
                title=f"{label}: {fmt(value)}",
            )
        )
    if integer and top < steps:  # counts: no grid line between two whole numbers
        steps = max(int(top), 1)
    y_ticks = [
        Tick(round(chart.plot_bottom - plot_h * i / steps, 2), fmt(top * i / steps))
        for i in range(steps + 1)
    ]
    ticks = [Tick(round(chart.left + i * step + step / 2, 2), label) for i, label in x_ticks]
    return dataclasses.replace(chart, bars=bars, x_ticks=ticks, y_ticks=y_ticks)


def per_hour_chart(hours: list[tuple[datetime.datetime, int]]) -> Chart:
    total = sum(n for _, n in hours)
    busiest = max(hours, key=lambda item: item[1])
    return bar_chart(
        "calls-per-hour",
        [(f"{hour:%a %d %b %H:00} UTC", n) for hour, n in hours],
        title="Calls received per hour, last 7 days",
        desc=(
            f"{total} calls received from {hours[0][0]:%d %b %H:00} to "
            f"{hours[-1][0]:%d %b %H:00} UTC; the busiest hour, "
            f"{busiest[0]:%a %d %b %H:00}, had {busiest[1]}."
        ),
        x_label="Hour (UTC); each label marks midnight",
        y_label="Calls",
        x_ticks=[(i, f"{hour:%a %d}") for i, (hour, _) in enumerate(hours) if hour.hour == 0],
        fmt=lambda v: f"{v:g}",
        integer=True,
    )


def duration_unit(seconds: float) -> tuple[str, int]:
    """The unit a duration reads best in: seconds, minutes or hours, and its size."""
    if seconds < 120:
        return "s", 1
    if seconds < 2 * 3600:
        return "min", 60
    return "h", 3600


def duration(seconds: float) -> str:
    unit, size = duration_unit(seconds)
    return f"{seconds / size:.{0 if size == 1 else 1}f} {unit}"


def to_applied_chart(days: list[tuple[datetime.date, float | None, int]]) -> Chart:
    measured = [(day, median, n) for day, median, n in days if median is not None]
    summary = "; ".join(f"{day:%a %d %b}: {duration(m)} over {n} calls" for day, m, n in measured)
    # One unit for the whole axis, so its grid falls on round numbers of it.
    unit, size = duration_unit(max((m for _, m, _ in measured), default=0))
    return bar_chart(
        "webhook-to-applied",
        [(f"{day:%a %d %b} ({n} calls)", None if m is None else m / size) for day, m, n in days],
        title="Median time from webhook to applied, per day",
        desc=summary or "No call reached applied in the last 7 days.",
        x_label="Day the call reached applied (UTC)",
        y_label=f"Median ({unit})",
        x_ticks=[(i, f"{day:%a %d}") for i, (day, _, _) in enumerate(days)],
        fmt=lambda v: f"{v:.3g} {unit}",
    )


# --- django-q's failed tasks, each linked to the call it was about ------------------------

admin.site.unregister(Failure)


@admin.register(Failure)
class FailedTaskAdmin(DjangoQFailAdmin):
    """django-q's "Failed tasks", with the call each task was about (from its name)."""

    list_display = ("name", "call_link", *DjangoQFailAdmin.list_display[1:])

    @admin.display(description="Call")
    def call_link(self, task: Failure) -> str:
        call_id = task_call_id(task.name)
        if call_id is None:
            return "-"
        url = reverse("admin:calls_call_change", args=[call_id])
        return format_html('<a href="{}">call {}</a>', url, call_id)
