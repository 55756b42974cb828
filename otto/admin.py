from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django_q.admin import ScheduleAdmin as DjangoQScheduleAdmin
from django_q.models import Schedule

from otto.models import Company, QueueHeartbeat, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Otto", {"fields": ("name",)}))
    list_display = ("username", "email", "name", "is_staff", "is_active")


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "timezone", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


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
