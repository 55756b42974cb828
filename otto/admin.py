import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers
from django_q.admin import ScheduleAdmin as DjangoQScheduleAdmin
from django_q.models import Schedule

from otto import erasure, retention, selectors, services
from otto.admin_base import ReadOnlyAdmin
from otto.crypto import Secret
from otto.logging import mask_phone
from otto.models import (
    AuditAction,
    AuditEvent,
    CallRailCompany,
    Company,
    Contact,
    Membership,
    PendingFileDeletion,
    PhoneNumber,
    QueueHeartbeat,
    RetentionRun,
    User,
)

SECRET_FIELDS = ("callrail_api_key", "callrail_signing_key")
RETENTION_FIELDS = tuple(retention.WINDOWS.values())


@admin.register(User)
class UserAdmin(DjangoUserAdmin[User]):
    # Django's UserAdmin always sets fieldsets; the stubs type the attribute optional.
    fieldsets = (
        *(DjangoUserAdmin.fieldsets or ()),
        ("Otto", {"fields": ("name", "clerk_user_id")}),
    )
    list_display = ("username", "email", "name", "clerk_user_id", "is_staff", "is_active")
    search_fields = ("username", "email", "name", "clerk_user_id")


class CompanyForm(forms.ModelForm[Company]):
    """Every change goes through :func:`otto.services.update_company`, the one writer of
    CallRail ids and phone numbers, so the admin gets the same cross-tenant checks and
    keeps ``PhoneNumber`` and ``CallRailCompany`` rows in step. Secrets are write-only: a
    blank input keeps the stored value."""

    callrail_company_ids = forms.CharField(
        label="CallRail company ids",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="COM… ids, one per line or comma-separated; checked against the "
        "company's own CallRail API key.",
    )
    tracking_numbers = forms.CharField(
        label="Tracking numbers",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One per line or comma-separated; unique across tenants.",
    )
    new_callrail_api_key = forms.CharField(
        label="New CallRail API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
    )
    clear_callrail_api_key = forms.BooleanField(label="Clear the CallRail API key", required=False)
    new_callrail_signing_key = forms.CharField(
        label="New CallRail signing key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
    )
    clear_callrail_signing_key = forms.BooleanField(
        label="Clear the CallRail signing key", required=False
    )

    # Written by update_company on a change; on an add, the company is created first and
    # these are set by editing it (the CallRail check needs the saved tenant).
    ROUTED = ("callrail_account_id", "callrail_company_ids", "tracking_numbers", "twilio_number")

    class Meta:
        model = Company
        # Listed, not excluded: a secret field added later stays out until someone decides.
        fields = [
            "name",
            "slug",
            "clerk_org_id",
            "is_active",
            "timezone",
            "quiet_hours_start",
            "quiet_hours_end",
            "business_hours",
            "transcriber",
            "analyzer",
            "analysis_monthly_budget_usd",
            "recovery_enabled",
            "recovery_nudge_hours",
            "recovery_escalate_hours",
            "recovery_text",
            "recovery_nudge_text",
            "recovery_block_list",
            "recovery_window_days",
            "ai_call_disclosure_script",
            "ai_call_disclosure_version",
            "followup_ai_calls",
            "followup_enabled",
            "followup_auto_send",
            "followup_text",
            "callrail_account_id",
            "twilio_number",
            *RETENTION_FIELDS,
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in RETENTION_FIELDS:
            # Model validators run only after clean(), and clean() already saves through
            # the service: the bounds must be checked by the form field itself.
            model_field = Company._meta.get_field(name)
            assert isinstance(model_field, models.Field)  # noqa: S101 - narrows the type
            self.fields[name].validators.extend(model_field.validators)
        if self.instance.pk:
            self.initial["callrail_company_ids"] = "\n".join(
                selectors.callrail_company_ids(self.instance)
            )
            self.initial["tracking_numbers"] = "\n".join(selectors.tracking_numbers(self.instance))

    def clean_twilio_number(self) -> str:
        value = self.cleaned_data.get("twilio_number") or ""
        return _phone(value) if value else ""

    def clean_tracking_numbers(self) -> list[str]:
        return [_phone(value) for value in _split(self.cleaned_data.get("tracking_numbers"))]

    def clean_callrail_company_ids(self) -> list[str]:
        return _split(self.cleaned_data.get("callrail_company_ids"))

    def clean(self) -> dict[str, Any]:
        # ModelForm.clean() returns cleaned_data; the stubs say it may return None.
        super().clean()
        cleaned = self.cleaned_data
        if self.errors:
            return cleaned
        if self.instance.pk is None:
            self._check_add(cleaned)
            return cleaned
        self._save_through_service(cleaned)
        return cleaned

    def _check_add(self, cleaned: dict[str, Any]) -> None:
        for name in self.ROUTED:
            if cleaned.get(name):
                self.add_error(name, "Save the company first, then set this by editing it.")

    def _save_through_service(self, cleaned: dict[str, Any]) -> None:
        changes = {name: cleaned[name] for name in self.changed_data if name in self.fields}
        changes = {
            name: value
            for name, value in changes.items()
            if name in self.Meta.fields or name in self.ROUTED
        }
        for name in SECRET_FIELDS:
            if cleaned.get(f"clear_{name}"):
                changes[name] = None
            elif cleaned.get(f"new_{name}"):
                changes[name] = cleaned[f"new_{name}"]
        if not changes:
            return
        try:
            company = services.update_company(self.instance, **changes)
        except ValidationError as exc:
            self.add_error(None, exc)
            return
        except services.NumbersTaken as exc:
            self.add_error(None, f"Numbers held by another tenant: {', '.join(exc.numbers)}.")
            return
        except services.CallRailCompanyTaken as exc:
            self.add_error(
                "callrail_company_ids",
                f"Held by another tenant: {', '.join(exc.callrail_ids)}.",
            )
            return
        except services.CallRailClaimRefused as exc:
            self.add_error("callrail_company_ids", f"{exc.message} ({', '.join(exc.callrail_ids)})")
            return
        except services.CallRailUnavailable as exc:
            self.add_error(None, f"CallRail could not be reached; nothing was changed ({exc}).")
            return
        # Saved: the admin's own save must write back exactly what the service stored.
        self.instance = company
        self.saved_by_service = True


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").replace(",", "\n").splitlines() if part.strip()]


def _phone(value: str) -> str:
    try:
        return services.check_phone(value)
    except ValidationError as exc:
        raise forms.ValidationError(exc.messages) from None


class PhoneNumberInline(admin.TabularInline[PhoneNumber, Company]):
    """Shown, not edited: numbers change through the form's fields (update_company)."""

    model = PhoneNumber
    extra = 0
    can_delete = False
    readonly_fields = ("number", "kind", "created_at")
    fields = ("number", "kind", "created_at")

    def has_add_permission(self, request: HttpRequest, obj: Company | None = None) -> bool:
        return False


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin[Company]):
    form = CompanyForm
    list_display = ("name", "slug", "clerk_org_id", "is_active", "timezone", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "slug", "clerk_org_id")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("callrail_api_key_status", "callrail_signing_key_status")
    inlines = [PhoneNumberInline]

    @admin.display(description="CallRail API key")
    def callrail_api_key_status(self, company: Company) -> str:
        return "set" if company.callrail_api_key else "not set"

    @admin.display(description="CallRail signing key")
    def callrail_signing_key_status(self, company: Company) -> str:
        return "set" if company.callrail_signing_key else "not set"

    def save_model(
        self, request: HttpRequest, company: Company, form: CompanyForm, change: bool
    ) -> None:
        if change:
            # update_company saved it while the form was validated (so its errors could be
            # shown on the form); saving the form's copy again would only race it.
            return
        secrets = []
        for name in SECRET_FIELDS:
            if form.cleaned_data.get(f"new_{name}"):
                setattr(company, name, Secret(form.cleaned_data[f"new_{name}"]))
                secrets.append(name)
        super().save_model(request, company, form, change)
        fields = sorted(set(form.changed_data) & set(form.Meta.fields))
        services.audit_company_created(
            company, fields, secrets, actor=request.user, request=request
        )


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin[Membership]):
    """Staff may fix a membership by hand; every change lands in the audit log."""

    list_display = ("user", "company", "role", "revoked_at", "created_at")
    list_filter = ("role", "company", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("user__email", "user__clerk_user_id", "company__name")
    list_select_related = ("user", "company")
    raw_id_fields = ("user", "company")

    def save_model(
        self,
        request: HttpRequest,
        membership: Membership,
        form: forms.ModelForm[Membership],
        change: bool,
    ) -> None:
        super().save_model(request, membership, form, change)
        role = membership.role
        if not change:
            services.audit_membership(
                AuditAction.MEMBERSHIP_CREATED, membership, "admin", request.user, role=role
            )
            return
        if "role" in form.changed_data:
            services.audit_membership(
                AuditAction.MEMBERSHIP_ROLE_CHANGED,
                membership,
                "admin",
                request.user,
                **{"from": form.initial.get("role"), "to": role},
            )
        if "revoked_at" in form.changed_data:
            action = (
                AuditAction.MEMBERSHIP_REVOKED
                if membership.revoked_at is not None
                else AuditAction.MEMBERSHIP_RESTORED
            )
            services.audit_membership(action, membership, "admin", request.user, role=role)
        other = sorted(set(form.changed_data) - {"role", "revoked_at"})
        if other:
            services.audit_membership(
                AuditAction.MEMBERSHIP_CHANGED, membership, "admin", request.user, fields=other
            )

    def delete_model(self, request: HttpRequest, membership: Membership) -> None:
        self.delete_queryset(request, Membership.objects.filter(pk=membership.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        with transaction.atomic():
            for membership in queryset.select_related("company"):
                services.audit_membership(
                    AuditAction.MEMBERSHIP_DELETED,
                    membership,
                    "admin",
                    request.user,
                    role=membership.role,
                )
            queryset.delete()


@admin.register(PhoneNumber)
class PhoneNumberAdmin(admin.ModelAdmin[PhoneNumber]):
    list_display = ("number", "kind", "company", "created_at")
    list_filter = ("kind", "company")
    search_fields = ("number",)
    list_select_related = ("company",)
    raw_id_fields = ("company",)


@admin.register(CallRailCompany)
class CallRailCompanyAdmin(admin.ModelAdmin[CallRailCompany]):
    """Read-only: a claim is made through the company's form, which checks it."""

    list_display = ("callrail_company_id", "company", "created_at")
    search_fields = ("callrail_company_id", "company__name", "company__slug")
    list_select_related = ("company",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: CallRailCompany | None = None
    ) -> bool:
        return False


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin[Contact]):
    list_display = ("phone", "name", "email", "company", "created_at")
    list_filter = ("company",)
    search_fields = ("phone", "name", "email")
    list_select_related = ("company",)
    raw_id_fields = ("company",)
    actions = ("export_contacts", "erase_contacts")

    @admin.action(description="Export everything Otto holds on the selected contacts (JSON)")
    def export_contacts(self, request: HttpRequest, queryset: QuerySet[Contact]) -> HttpResponse:
        exports = [
            erasure.export_contact(contact.company, contact.phone, actor=request.user)
            for contact in queryset.select_related("company").order_by("pk")
        ]
        response = HttpResponse(
            json.dumps(exports, cls=DjangoJSONEncoder, indent=2), content_type="application/json"
        )
        response["Content-Disposition"] = 'attachment; filename="otto-contact-export.json"'
        add_never_cache_headers(response)
        return response

    @admin.action(
        description="Erase the selected contacts everywhere (asks to confirm)",
        permissions=["delete"],
    )
    def erase_contacts(
        self, request: HttpRequest, queryset: QuerySet[Contact]
    ) -> HttpResponse | None:
        contacts = list(queryset.select_related("company").order_by("pk"))
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": "Erase contacts everywhere?",
                "opts": self.model._meta,
                "contacts": [(contact, mask_phone(contact.phone)) for contact in contacts],
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/otto/contact/erase_confirmation.html", context)
        for contact in contacts:
            erased = erasure.erase_contact(contact.company, contact.phone, actor=request.user)
            counts = ", ".join(f"{count} {kind}" for kind, count in sorted(erased.counts.items()))
            self.message_user(
                request,
                f"Erased {mask_phone(contact.phone)} of {contact.company}: {counts}.",
                messages.SUCCESS,
            )
            if erased.failed_files:
                self.message_user(
                    request,
                    "Stored files left to remove by hand: " + ", ".join(erased.failed_files),
                    messages.ERROR,
                )
        return None


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin[AuditEvent]):
    """The audit log, every tenant's and the staff-wide events: read-only evidence."""

    list_display = ("created_at", "company", "action", "actor_label", "target", "ip_address")
    list_filter = ("action", "company", ("created_at", admin.DateFieldListFilter))
    search_fields = ("=target_id", "actor_label")
    search_help_text = "A target id, an actor, or a phone number (finds its erasure and exports)."
    list_select_related = ("company",)
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    fields = (
        "created_at",
        "company",
        "action",
        "actor",
        "actor_label",
        "target_type",
        "target_id",
        "details",
        "ip_address",
        "user_agent",
    )
    readonly_fields = fields

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[AuditEvent], search_term: str
    ) -> tuple[QuerySet[AuditEvent], bool]:
        found, duplicates = super().get_search_results(request, queryset, search_term)
        try:
            phone = services.check_phone(search_term.strip())
        except ValidationError:
            return found, duplicates
        # An erased number is kept only as its hash: search by the hash.
        hashes = erasure.phone_hashes(phone)
        return found | queryset.filter(target_type="phone", target_id__in=hashes), duplicates

    @admin.display(description="Target")
    def target(self, event: AuditEvent) -> str:
        return f"{event.target_type} {event.target_id}".strip() or "-"


@admin.register(QueueHeartbeat)
class QueueHeartbeatAdmin(admin.ModelAdmin[QueueHeartbeat]):
    list_display = ("queue", "cluster", "beat_at", "host", "pid")

    def has_add_permission(self, request: HttpRequest, obj: QueueHeartbeat | None = None) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: QueueHeartbeat | None = None
    ) -> bool:
        return False


admin.site.unregister(Schedule)


@admin.register(Schedule)
class ScheduleAdmin(DjangoQScheduleAdmin):  # type: ignore[misc]  # django-q2 is untyped
    """Schedules are code (otto/schedules.py): ops may pause and resume, nothing else."""

    actions = ["pause", "resume"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in Schedule._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Pause the selected schedules")
    def pause(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        count = queryset.update(repeats=0)
        self.message_user(request, f"Paused {count} schedule(s).", messages.SUCCESS)

    @admin.action(description="Resume the selected schedules")
    def resume(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        count = queryset.filter(repeats=0).update(repeats=-1)
        self.message_user(request, f"Resumed {count} schedule(s).", messages.SUCCESS)


@admin.register(RetentionRun)
class RetentionRunAdmin(ReadOnlyAdmin[RetentionRun]):
    """What each retention purge removed, per tenant and kind (docs/retention.md)."""

    list_display = ("company", "started_at", "finished_at", "purged", "error_count")
    list_filter = ("company", ("finished_at", admin.EmptyFieldListFilter))
    list_select_related = ("company",)
    date_hierarchy = "started_at"
    fields = ("company", "started_at", "finished_at", "counts", "errors")

    @admin.display(description="Purged")
    def purged(self, run: RetentionRun) -> str:
        counts = run.counts or {}
        return ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()) if n) or "nothing"

    @admin.display(description="Errors")
    def error_count(self, run: RetentionRun) -> int:
        return len(run.errors or [])


@admin.register(PendingFileDeletion)
class PendingFileDeletionAdmin(ReadOnlyAdmin[PendingFileDeletion]):
    """Files no row points at any more whose deletion from storage has not succeeded yet;
    the next retention run tries again."""

    list_display = ("name", "kind", "company", "attempts", "last_error", "created_at")
    list_filter = ("kind", "company")
    list_select_related = ("company",)
    search_fields = ("name",)
