"""Analyses in the admin: the call's page shows its current analysis beside the transcript,
and ops re-run the analysis of one call or a selection.

``calls`` sits below ``analysis`` and cannot show an analysis, so this module registers the
call admin again as :class:`AnalysedCallAdmin`, calls' own admin plus the analysis: its
transcript fieldset becomes the transcript beside the analysis, each cited utterance
highlighted with the names of the fields that cite it, people's corrections shown over the
model's values. A re-run goes through :func:`analysis.services.reanalyze_call`, the path
``manage.py reanalyze`` takes, and is audited in the call's stage history with the staff
user who asked. Staff only (Django's admin login), every tenant's calls, each re-run under
its call's own company.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST

from analysis import selectors, services
from analysis.models import AnalysisFailure, CallAnalysis
from calls.admin import CallAdmin
from calls.models import Call, Transcript
from otto.admin_base import ReadOnlyAdmin

RERUN_REASON = "re-analysis requested by ops (admin)"
# Scoped to the panel; colours that read on the admin's light and dark themes.
PANEL_STYLE = """<style>
.otto-ta{display:flex;gap:2rem;align-items:flex-start;width:100%}
.otto-ta>div{flex:1 1 0;min-width:0}
.otto-ta h3{margin:0 0 .5rem}
.otto-ta .utt{padding:.25rem .5rem;margin:.15rem 0;border-left:3px solid transparent}
.otto-ta .utt.cited{background:rgba(255,193,7,.22);border-left-color:#e8a200}
.otto-ta .utt .at{color:var(--body-quiet-color,#666);font-size:.85em}
.otto-ta .tag{display:inline-block;margin:0 .2rem;padding:0 .35rem;border-radius:.25rem;
 background:#e8a200;color:#000;font-size:.8em}
.otto-ta table{width:100%}
.otto-ta td,.otto-ta th{vertical-align:top}
.otto-ta .model{text-decoration:line-through;color:var(--body-quiet-color,#666)}
.otto-ta .fixed{display:inline-block;margin-right:.3rem;padding:0 .35rem;border-radius:.25rem;
 background:#2f7d32;color:#fff;font-size:.8em}
</style>"""


def _lines(name: str, value: Any) -> list[str]:
    """A field's value as the lines an operator reads."""
    if value is None or value == "" or value == [] or value == {}:
        return ["—"]
    if isinstance(value, bool):
        return ["yes" if value else "no"]
    if name == "objections":
        return [
            f"{o.get('category')}: “{o.get('quote')}” (#{o.get('utterance')})"
            + (" · resolved" if o.get("resolved") else "")
            for o in value
        ]
    if name == "pending_actions":
        return [
            f"{a.get('type')}: {a.get('description')}"
            + (f" · due {a['due']}" if a.get("due") else "")
            for a in value
        ]
    if name == "appointment":
        said = f"said: “{value['requested']}”" if value.get("requested") else ""
        parts = [f"{value.get('start') or '?'} → {value.get('end') or '?'}", said]
        parts += [value.get("address") or "", value.get("service_type") or ""]
        return [part for part in parts if part]
    if name == "sop":
        return [
            f"score {value.get('score')}",
            "completed: " + (", ".join(value.get("completed") or []) or "—"),
            "missed: " + (", ".join(value.get("missed") or []) or "—"),
        ]
    if isinstance(value, list):
        return [str(item) for item in value]
    return [str(value)]


def _value(name: str, value: Any) -> SafeString:
    return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in _lines(name, value)))  # noqa: S308 - a constant


def citations(analysis: CallAnalysis) -> dict[str, list[int]]:
    """Field → the utterances it cites: ``citations``, plus each objection's and pending
    action's own utterance (as read, corrections applied)."""
    cites = {name: set(indices) for name, indices in (analysis.citations or {}).items()}
    fields = selectors.effective_fields(analysis)
    for name in ("objections", "pending_actions"):
        for item in fields[name] or []:
            if isinstance(item.get("utterance"), int):
                cites.setdefault(name, set()).add(item["utterance"])
    return {name: sorted(indices) for name, indices in sorted(cites.items())}


def cited_by(cites: dict[str, list[int]]) -> dict[int, list[str]]:
    """Utterance index → the fields that cite it."""
    by_utterance: dict[int, list[str]] = {}
    for name, indices in cites.items():
        for index in indices:
            by_utterance.setdefault(index, []).append(name)
    return by_utterance


def transcript_html(transcript: Transcript | None, cites: dict[int, list[str]]) -> SafeString:
    if transcript is None:
        return mark_safe("<p>No transcript.</p>")  # noqa: S308 - a constant
    rows = []
    for index, u in enumerate(transcript.utterances):
        names = cites.get(index, [])
        tags = format_html_join("", '<span class="tag">{}</span>', ((n,) for n in names))
        rows.append(
            format_html(
                '<div class="utt{}" id="utterance-{}"><b>#{} {}</b> '
                '<span class="at">{}–{} s</span> {} {}</div>',
                " cited" if names else "",
                index,
                index,
                u.get("role") or f"speaker {u.get('speaker')}",
                u.get("start"),
                u.get("end"),
                u.get("text"),
                tags,
            )
        )
    return format_html_join("", "{}", ((row,) for row in rows))


def analysis_html(
    call: Call, analysis: CallAnalysis | None, cites: dict[str, list[int]]
) -> SafeString:
    if analysis is None:
        return mark_safe("<p>No analysis yet.</p>")  # noqa: S308 - a constant
    versions = reverse("admin:analysis_callanalysis_changelist") + f"?call__id__exact={call.pk}"
    head = format_html(
        '<p>Version {} (<a href="{}">all versions</a>) · {} {} · prompt {} · {} · '
        "{} in / {} out tokens · ${}</p>",
        analysis.version,
        versions,
        analysis.analyzer,
        analysis.model,
        analysis.prompt_version,
        f"{analysis.created_at:%Y-%m-%d %H:%M %Z}",
        analysis.input_tokens,
        analysis.output_tokens,
        analysis.cost_usd,
    )
    effective = selectors.effective_fields(analysis)
    overrides = analysis.overrides or {}
    rows = []
    for name in selectors.FIELDS:
        value = _value(name, effective[name])
        if name in overrides:
            value = format_html(
                '<span class="fixed">corrected</span>{}<div class="model">{}</div>',
                value,
                _value(name, getattr(analysis, name)),
            )
        links = format_html_join(
            " ", '<a href="#utterance-{}">#{}</a>', ((i, i) for i in cites.get(name, []))
        )
        rows.append(format_html("<tr><th>{}</th><td>{}</td><td>{}</td></tr>", name, value, links))
    table = format_html(
        "<table><thead><tr><th>field</th><th>value</th><th>cites</th></tr></thead>"
        "<tbody>{}</tbody></table>",
        format_html_join("", "{}", ((row,) for row in rows)),
    )
    return format_html("{}{}", head, table)


def failures_html(call: Call) -> SafeString:
    failures = AnalysisFailure.objects.filter(call=call).order_by("-created_at")[:20]
    if not failures:
        return mark_safe("")  # noqa: S308 - a constant
    items = format_html_join(
        "",
        "<li>{} · {} · {} in / {} out tokens · ${} · {}</li>",
        (
            (
                f"{f.created_at:%Y-%m-%d %H:%M %Z}",
                f.model or f.analyzer,
                f.input_tokens,
                f.output_tokens,
                f.cost_usd,
                f.error,
            )
            for f in failures
        ),
    )
    return format_html(
        "<h3>Failed attempts (not stored, counted in the budget)</h3><ul>{}</ul>", items
    )


admin.site.unregister(Call)


@admin.register(Call)
class AnalysedCallAdmin(CallAdmin):
    """The call admin of :mod:`calls.admin`, with the analysis beside the transcript and the
    re-run of analysis."""

    actions = (*CallAdmin.actions, "rerun_analysis")

    def get_fieldsets(self, request: HttpRequest, obj: Call | None = None) -> list[Any]:
        # calls' transcript fieldset becomes the transcript beside the analysis.
        panel = (
            "Transcript and analysis",
            {"fields": ("transcript_roles", "transcript_and_analysis")},
        )
        return [
            panel if title == "Transcript (redacted)" else (title, options)
            for title, options in super().get_fieldsets(request, obj)
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Call | None = None) -> list[str]:
        return [*super().get_readonly_fields(request, obj), "transcript_and_analysis"]

    @admin.display(description="Utterances and analysis")
    def transcript_and_analysis(self, call: Call) -> str:
        transcript = Transcript.objects.filter(call=call).first()
        analysis = CallAnalysis.objects.filter(call=call, is_current=True).first()
        cites = citations(analysis) if analysis else {}
        return format_html(
            '{}<div class="otto-ta"><div><h3>Transcript (redacted)</h3>{}</div>'
            "<div><h3>Analysis</h3>{}{}</div></div>",
            mark_safe(PANEL_STYLE),  # noqa: S308 - a constant
            transcript_html(transcript, cited_by(cites)),
            analysis_html(call, analysis, cites),
            failures_html(call),
        )

    @admin.display(description="Re-run")
    def pipeline_actions(self, call: Call) -> str:
        buttons = super().pipeline_actions(call)
        if call.pk is None:
            return buttons
        return format_html(
            '{} <button type="submit" formaction="{}" formmethod="post" class="button">'
            "Re-run analysis</button>",
            buttons,
            reverse("admin:calls_call_reanalyze", args=[call.pk]),
        )

    def get_urls(self):
        reanalyze = self.admin_site.admin_view(require_POST(self.reanalyze_view))
        return [
            path("<int:call_id>/reanalyze/", reanalyze, name="calls_call_reanalyze"),
            *super().get_urls(),
        ]

    def reanalyze_view(self, request: HttpRequest, call_id: int) -> HttpResponseRedirect:
        if not self.has_change_permission(request):
            raise PermissionDenied
        call = get_object_or_404(Call.objects.select_related("company"), pk=call_id)
        self._reanalyze(request, [call])
        return HttpResponseRedirect(reverse("admin:calls_call_change", args=[call_id]))

    @admin.action(description="Re-run analysis of the selected calls", permissions=["change"])
    def rerun_analysis(self, request: HttpRequest, queryset: QuerySet[Call]) -> None:
        self._reanalyze(request, queryset.select_related("company"))

    def _reanalyze(self, request: HttpRequest, calls) -> None:
        done, refused = 0, []
        # One call at a time, each under its own company; every re-run is audited.
        for call in calls:
            try:
                services.reanalyze_call(call, actor=request.user, reason=RERUN_REASON)
                done += 1
            except (services.ReanalysisRefused, services.AnalysisWaits) as exc:
                refused.append(f"call {call.pk}: {exc}")
        if done:
            self.message_user(
                request, f"Re-analysis requested for {done} call(s).", messages.SUCCESS
            )
        for message in refused[:10]:
            self.message_user(request, message, messages.WARNING)


@admin.register(CallAnalysis)
class CallAnalysisAdmin(ReadOnlyAdmin[CallAnalysis]):
    """Every analysis version, as the model wrote it (the call's page shows corrections)."""

    list_display = (
        "created_at",
        "company",
        "call",
        "version",
        "is_current",
        "analyzer",
        "model",
        "prompt_version",
        "booking_status",
        "cost_usd",
    )
    list_filter = ("company", "is_current", "analyzer", "booking_status", "prompt_version")
    search_fields = ("=call__external_id",)
    list_select_related = ("company", "call")
    raw_id_fields = ("call",)
    ordering = ("-created_at",)
    show_full_result_count = False

    def has_change_permission(self, request: HttpRequest, obj: CallAnalysis | None = None) -> bool:
        return False
