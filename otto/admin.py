from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django_q.admin import ScheduleAdmin as DjangoQScheduleAdmin
from django_q.models import Schedule

from otto.crypto import Secret
from otto.models import Company, Contact, Membership, PhoneNumber, QueueHeartbeat, User

SECRET_FIELDS = ("callrail_api_key", "callrail_signing_key")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Otto", {"fields": ("name", "clerk_user_id")}))
    list_display = ("username", "email", "name", "clerk_user_id", "is_staff", "is_active")
    search_fields = ("username", "email", "name", "clerk_user_id")


class CompanyForm(forms.ModelForm):
    """Secrets are write-only here too: a blank input keeps the stored value."""

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
            "recovery_enabled",
            "recovery_nudge_hours",
            "recovery_escalate_hours",
            "callrail_account_id",
            "callrail_company_ids",
            "twilio_number",
        ]


class PhoneNumberInline(admin.TabularInline):
    model = PhoneNumber
    extra = 0


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
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

    def save_model(self, request, company: Company, form: CompanyForm, change: bool) -> None:
        for name in SECRET_FIELDS:
            if form.cleaned_data.get(f"clear_{name}"):
                setattr(company, name, None)
            elif form.cleaned_data.get(f"new_{name}"):
                setattr(company, name, Secret(form.cleaned_data[f"new_{name}"]))
        super().save_model(request, company, form, change)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "company", "role", "revoked_at", "created_at")
    list_filter = ("role", "company", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("user__email", "user__clerk_user_id", "company__name")
    list_select_related = ("user", "company")
    raw_id_fields = ("user", "company")


@admin.register(PhoneNumber)
class PhoneNumberAdmin(admin.ModelAdmin):
    list_display = ("number", "kind", "company", "created_at")
    list_filter = ("kind", "company")
    search_fields = ("number",)
    list_select_related = ("company",)
    raw_id_fields = ("company",)


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("phone", "name", "email", "company", "created_at")
    list_filter = ("company",)
    search_fields = ("phone", "name", "email")
    list_select_related = ("company",)
    raw_id_fields = ("company",)


@admin.register(QueueHeartbeat)
class QueueHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("queue", "cluster", "beat_at", "host", "pid")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


admin.site.unregister(Schedule)


@admin.register(Schedule)
class ScheduleAdmin(DjangoQScheduleAdmin):
    """Schedules are code (otto/schedules.py): ops may pause and resume, nothing else."""

    actions = ["pause", "resume"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Schedule._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Pause the selected schedules")
    def pause(self, request, queryset) -> None:
        count = queryset.update(repeats=0)
        self.message_user(request, f"Paused {count} schedule(s).", messages.SUCCESS)

    @admin.action(description="Resume the selected schedules")
    def resume(self, request, queryset) -> None:
        count = queryset.filter(repeats=0).update(repeats=-1)
        self.message_user(request, f"Resumed {count} schedule(s).", messages.SUCCESS)
