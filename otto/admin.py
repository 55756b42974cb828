from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django_q.admin import ScheduleAdmin as DjangoQScheduleAdmin
from django_q.models import Schedule

from otto import selectors, services
from otto.crypto import Secret
from otto.models import (
    CallRailCompany,
    Company,
    Contact,
    Membership,
    PhoneNumber,
    QueueHeartbeat,
    User,
)

SECRET_FIELDS = ("callrail_api_key", "callrail_signing_key")


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
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
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
        for name in SECRET_FIELDS:
            if form.cleaned_data.get(f"new_{name}"):
                setattr(company, name, Secret(form.cleaned_data[f"new_{name}"]))
        super().save_model(request, company, form, change)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin[Membership]):
    list_display = ("user", "company", "role", "revoked_at", "created_at")
    list_filter = ("role", "company", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("user__email", "user__clerk_user_id", "company__name")
    list_select_related = ("user", "company")
    raw_id_fields = ("user", "company")


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
