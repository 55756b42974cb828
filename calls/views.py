"""The calls API (``calls/``, ``calls/{id}/``, ``calls/{id}/recording/``) and the local
recording link it redirects to on the filesystem storage."""

from __future__ import annotations

from typing import Any, cast

from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.views.decorators.http import require_GET
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from calls import recordings, retries, selectors
from calls.filters import CallFilter
from calls.models import Call
from calls.serializers import (
    CallDetailSerializer,
    CallSerializer,
    HandledByInputSerializer,
    RetryInputSerializer,
    RolesInputSerializer,
    TranscriptSerializer,
)
from otto.auth import TenantRequest
from otto.errors import error_body
from otto.pagination import CursorPagination
from otto.permissions import ALL_ROLES, MANAGERS, OFFICE
from otto.viewsets import Conflict, TenantViewSet


class CallCursorPagination(CursorPagination):
    # Newest first; the id breaks ties between calls that started in the same microsecond.
    # DRF takes a tuple here; the stubs type ordering as a single str.
    ordering = ("-started_at", "-id")  # type: ignore[assignment]

    def get_ordering(self, request: Request, queryset: QuerySet, view: Any) -> tuple[str, ...]:
        # A search is ranked: best match first (the rank comes from calls.search).
        if request.query_params.get("search", "").strip():
            return ("-rank", "-id")
        return self.ordering


class CallViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Calls as ingest stored them. Everyone reads; what a role sees is in the selector."""

    # The search vector is for PostgreSQL to match and rank with, never shown: a
    # transcript's worth of lexemes a row that no page needs to fetch.
    queryset = Call.objects.select_related("contact", "handled_by").defer("search_vector")
    serializer_class = CallSerializer
    filterset_class = CallFilter
    pagination_class = CallCursorPagination
    # The order is fixed (the cursor depends on it): newest first, or best match for ?search=.
    filter_backends = [DjangoFilterBackend]
    roles = {
        "default": ALL_ROLES,
        "partial_update": MANAGERS,
        "retry": MANAGERS,
        "transcript_roles": OFFICE,
    }

    def get_queryset(self) -> QuerySet[Call]:
        # ``cast``: as in TenantViewSet, authentication bound the tenant on the request.
        request = cast(TenantRequest, self.request)
        calls = selectors.visible_calls(
            super().get_queryset(), user=request.user, role=request.role
        )
        # A list row's columns only: 2.9 of a page's 20.7 ms in-process went on loading the
        # rest (docs/performance.md).
        return calls.only(*CallSerializer.columns()) if self.action == "list" else calls

    def get_serializer_class(self) -> type[CallSerializer]:
        return CallSerializer if self.action == "list" else CallDetailSerializer

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        call = self.get_object()
        # Oldest first: the history reads as the call's life.
        history = call.stage_changes.select_related("actor").order_by("created_at", "pk")
        call._prefetched_objects_cache = {"stage_changes": history}
        return Response(self.get_serializer(call).data)

    @extend_schema(request=HandledByInputSerializer, responses={200: CallDetailSerializer})
    def partial_update(self, request: Request, pk: Any = None) -> Response:
        """Correct who handled the call (manager): KPIs per CSR follow it."""
        call = self.get_object()
        body = HandledByInputSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        retries.correct_handled_by(call, body.validated_data["handled_by"], actor=request.user)
        return self.retrieve(request, pk=pk)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "from_stage",
                str,
                enum=list(retries.FROM_STAGES),
                description="Re-run from this stage, whatever the call's stage.",
            )
        ],
        request=RetryInputSerializer,
        responses={
            200: CallDetailSerializer,
            409: OpenApiResponse(description="Not failed (and no from_stage), or it moved."),
        },
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: Any = None) -> Response:
        """Restart a failed call from its failed stage (manager); audited."""
        call = self.get_object()
        body = RetryInputSerializer(data=request.data or {})
        body.is_valid(raise_exception=True)
        from_stage = request.query_params.get("from_stage") or None
        if from_stage is not None and from_stage not in retries.FROM_STAGES:
            raise ValidationError({"from_stage": [f"One of: {', '.join(retries.FROM_STAGES)}."]})
        try:
            retries.retry_stage(
                call,
                actor=request.user,
                from_stage=from_stage,
                reason=body.validated_data.get("reason", ""),
            )
        except retries.RetryRefused as exc:
            raise Conflict(str(exc), details={"stage": call.stage}) from None
        return self.retrieve(request, pk=pk)

    @extend_schema(
        # RolesInputSerializer takes either form; an empty body or swap: false is a 400.
        request={
            "application/json": {
                "anyOf": [
                    {
                        "type": "object",
                        "properties": {"swap": {"type": "boolean", "enum": [True]}},
                        "required": ["swap"],
                    },
                    {
                        "type": "object",
                        "properties": {
                            "roles": {
                                "type": "object",
                                "minProperties": 1,
                                "additionalProperties": {
                                    "type": "string",
                                    "enum": ["agent", "customer"],
                                },
                                "description": "Speaker number → role.",
                            }
                        },
                        "required": ["roles"],
                    },
                ]
            }
        },
        responses={200: TranscriptSerializer},
    )
    @action(detail=True, methods=["patch"], url_path="transcript/roles")
    def transcript_roles(self, request: Request, pk: Any = None) -> Response:
        """Correct who is the agent and who the customer (manager or CSR)."""
        call = self.get_object()
        body = RolesInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            transcript = retries.correct_roles(
                call,
                actor=request.user,
                swap=body.validated_data.get("swap", False),
                roles=body.validated_data.get("roles"),
            )
        except retries.NoTranscript as exc:
            raise NotFound(str(exc)) from None
        except ValueError as exc:
            raise ValidationError({"roles": [str(exc)]}) from None
        return Response(TranscriptSerializer(transcript).data)

    @extend_schema(
        responses={
            302: OpenApiResponse(
                description="Location: a short-lived link to the audio (S3 presigned or "
                "signed local). Every request is audited."
            ),
            404: OpenApiResponse(
                description="No such call, or it has no recording (never had one, or the "
                "company's retention window deleted it: `recording_purged_at`)."
            ),
        }
    )
    @action(detail=True, methods=["get"])
    def recording(self, request: Request, pk: Any = None) -> HttpResponse:
        call = self.get_object()
        try:
            return recordings.redirect_to_recording(call, request)
        except recordings.NoRecording:
            raise NotFound(recordings.missing_reason(call)) from None


@require_GET
def recording_file(request: HttpRequest, token: str) -> HttpResponseBase:
    """Stream a recording to whoever holds a valid, unexpired link (no session needed, as
    with an S3 presigned URL: an ``<audio>`` element follows the redirect without a token)."""
    try:
        call = recordings.check_token(token)
    except recordings.BadLink as exc:
        return JsonResponse(error_body(exc.code, str(exc)), status=403)
    except recordings.NoRecording:
        return JsonResponse(error_body("not_found", "This recording no longer exists."), status=404)
    try:
        audio = call.recording.open("rb")
    except FileNotFoundError:
        return JsonResponse(error_body("not_found", "This recording no longer exists."), status=404)
    response = FileResponse(audio, content_type=call.recording_content_type or "audio/mpeg")
    response["Cache-Control"] = "private, no-store"
    return response
