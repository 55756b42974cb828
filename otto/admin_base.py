"""Admin building blocks shared by the apps."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import HttpRequest, HttpResponse


class ReadOnlyAdmin[M: Model](admin.ModelAdmin[M]):
    """Evidence, not data entry: no add, no delete, no save buttons. Actions and custom
    views (replay, retry…) are how ops change things."""

    def has_add_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: M | None = None) -> list[str]:
        # Shown as text, not as inputs that look editable on a page that cannot save.
        declared = list(super().get_readonly_fields(request, obj))
        opts = self.model._meta
        fields = [
            f.name for f in (*opts.fields, *opts.many_to_many) if f.editable and not f.primary_key
        ]
        return [*declared, *(name for name in fields if name not in declared)]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # Hiding the save buttons is not enough: a posted change form would still save.
        if request.method == "POST":
            raise PermissionDenied("This page is read-only.")
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        return super().change_view(request, object_id, form_url, extra_context)
