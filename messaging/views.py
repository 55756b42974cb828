"""The SMS API: ``threads/``, ``threads/{id}/messages/``, ``threads/{id}/read/``, ``consent/``,
``recoveries/``, ``followups/``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from messaging import followups, selectors, services
from messaging.filters import FollowUpFilter, RecoveryFilter, ThreadFilter
from messaging.models import ConsentEvent, FollowUp, Message, MissedCallRecovery, Thread
from messaging.serializers import (
    ConsentEventSerializer,
    ConsentInputSerializer,
    ConsentQuerySerializer,
    FollowUpSerializer,
    FollowUpUpdateSerializer,
    MessageSerializer,
    RecoverySerializer,
    SendInputSerializer,
    ThreadSerializer,
)
from otto.auth import TenantRequest
from otto.models import Company
from otto.pagination import CursorPagination
from otto.permissions import OFFICE
from otto.throttling import RateLimitThrottle
from otto.viewsets import Conflict, TenantAPIView, TenantViewSet


class SendRateThrottle(RateLimitThrottle):
    """``RATE_LIMIT_SMS_SEND`` sends per company: a runaway client cannot spam customers."""

    scope = "sms-send"
    rate_setting = "RATE_LIMIT_SMS_SEND"

    def key(self, request: Request) -> str | None:
        company = getattr(request, "company", None)
        return None if company is None else f"company:{company.pk}"


class SendRefusedError(exceptions.APIException):
    """422 whose code is the gate's reason (``recipient_opted_out``, ``quiet_hours``)."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "send_refused"

    def __init__(self, code: str, detail: str, details: dict[str, Any]) -> None:
        super().__init__(detail, code)
        self.details = details


class ThreadPagination(CursorPagination):
    ordering = ("-last_message_at", "-id")  # type: ignore[assignment]


class MessagePagination(CursorPagination):
    ordering = ("-created_at", "-id")  # type: ignore[assignment]


class ThreadViewSet(mixins.ListModelMixin, TenantViewSet[Thread]):
    """A tenant's SMS threads, newest activity first (managers and CSRs)."""

    queryset = Thread.objects.select_related("contact")
    serializer_class = ThreadSerializer
    filterset_class = ThreadFilter
    filter_backends = [DjangoFilterBackend]
    pagination_class = ThreadPagination
    roles = {"default": OFFICE}

    def get_throttles(self) -> list[BaseThrottle]:
        throttles = list(super().get_throttles())
        # The schema generator asks with no request; a POST there is the send.
        method = self.request.method if self.request is not None else "POST"
        if self.action == "messages" and method == "POST":
            throttles.append(SendRateThrottle())
        return throttles

    @extend_schema(methods=["GET"], responses={200: MessageSerializer(many=True)}, request=None)
    @extend_schema(
        methods=["POST"],
        request=SendInputSerializer,
        responses={
            201: MessageSerializer,
            422: OpenApiResponse(description="recipient_opted_out or quiet_hours; nothing sent"),
        },
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
    )
    @action(detail=True, methods=["get", "post"], pagination_class=MessagePagination)
    def messages(self, request: Request, pk: Any = None) -> Response:
        """GET the history (newest first); POST {body} sends through the consent gate."""
        thread = self.get_object()
        tenant = cast(TenantRequest, request)
        if request.method == "GET":
            rows = selectors.thread_messages(tenant.company, thread).order_by("-created_at", "-id")
            # The action's own paginator (and schema) pages messages, not the viewset's threads.
            paginator = cast(MessagePagination, self.paginator)
            page = paginator.paginate_queryset(rows, request, view=self)
            return paginator.get_paginated_response(MessageSerializer(page, many=True).data)
        body = SendInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            message = services.send_message(
                tenant.company,
                thread,
                body=body.validated_data["body"],
                kind=Message.Kind.MANUAL,
                sent_by=tenant.user,
                now=timezone.now(),
            )
        except services.SendRefused as exc:
            decision = exc.decision
            details: dict[str, Any] = {"message": exc.message.pk}
            if decision.send_at is not None:
                details["next_window_at"] = decision.send_at.isoformat()
            text = (
                "The recipient has opted out of texts."
                if decision.reason == "recipient_opted_out"
                else "It is quiet hours where the recipient is; send after the window opens."
            )
            raise SendRefusedError(decision.reason, text, details) from None
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ThreadSerializer})
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: Any = None) -> Response:
        """Mark the thread read."""
        thread = self.get_object()
        services.mark_read(thread)
        thread.refresh_from_db()
        return Response(ThreadSerializer(thread).data)


class RecoveryPagination(CursorPagination):
    ordering = ("-created_at", "-id")  # type: ignore[assignment]


class RecoveryViewSet(mixins.ListModelMixin, TenantViewSet[MissedCallRecovery]):
    """The missed-call recovery queue, newest first (managers and CSRs)."""

    queryset = MissedCallRecovery.objects.all()
    serializer_class = RecoverySerializer
    filterset_class = RecoveryFilter
    filter_backends = [DjangoFilterBackend]
    pagination_class = RecoveryPagination
    roles = {"default": OFFICE}


class IllegalTransitionConflict(Conflict):
    default_code = "illegal_transition"


ILLEGAL_TRANSITION = OpenApiResponse(
    description="`illegal_transition`: the follow-up's status (`details.status`) does not "
    "allow this (only a draft is approved or edited; only a pending one is cancelled)."
)


class FollowUpViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet[FollowUp]):
    """Follow-ups of qualified unbooked calls, newest first (managers and CSRs): a draft is
    edited, approved or cancelled here (docs/recovery.md)."""

    queryset = FollowUp.objects.select_related("message", "contact")
    serializer_class = FollowUpSerializer
    filterset_class = FollowUpFilter
    filter_backends = [DjangoFilterBackend]
    pagination_class = RecoveryPagination
    roles = {"default": OFFICE}
    http_method_names = ["get", "post", "patch", "head", "options"]

    def _done(self, step: Callable[[Company], FollowUp]) -> Response:
        """Run a follow-up move for the caller's company; an illegal one is a 409."""
        try:
            followup = step(cast(TenantRequest, self.request).company)
        except followups.IllegalTransition as exc:
            raise IllegalTransitionConflict(str(exc), {"status": exc.status}) from None
        return Response(FollowUpSerializer(followup).data)

    @extend_schema(
        request=FollowUpUpdateSerializer,
        responses={200: FollowUpSerializer, 409: ILLEGAL_TRANSITION},
    )
    def partial_update(self, request: Request, pk: Any = None) -> Response:
        """Change a draft's ``body`` (it becomes a person's text) or ``scheduled_for``."""
        followup = self.get_object()
        body = FollowUpUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._done(lambda company: followups.edit(company, followup, **body.validated_data))

    @extend_schema(request=None, responses={200: FollowUpSerializer, 409: ILLEGAL_TRANSITION})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: Any = None) -> Response:
        """Approve a draft: it goes at ``scheduled_for`` (the next business minute if that
        passed), through the consent gate."""
        followup = self.get_object()
        user = cast(TenantRequest, request).user
        return self._done(lambda company: followups.approve(company, followup, actor=user))

    @extend_schema(request=None, responses={200: FollowUpSerializer, 409: ILLEGAL_TRANSITION})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: Any = None) -> Response:
        """Cancel a draft, approved or scheduled follow-up; nothing is sent."""
        followup = self.get_object()
        user = cast(TenantRequest, request).user
        return self._done(lambda company: followups.cancel(company, followup, actor=user))


class ConsentView(TenantAPIView):
    """``GET consent/?phone=``: the current state and the history; ``POST`` a manual opt-out,
    or an ``ai_voice`` opt-in with its proof."""

    roles = {"default": OFFICE}

    @extend_schema(parameters=[ConsentQuerySerializer], responses={200: ConsentEventSerializer})
    def get(self, request: Request) -> Response:
        query = ConsentQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(self._state(request, **query.validated_data))

    @extend_schema(request=ConsentInputSerializer, responses={201: ConsentEventSerializer})
    def post(self, request: Request) -> Response:
        tenant = cast(TenantRequest, request)
        body = ConsentInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        phone, channel = data["phone"], data["channel"]
        services.record_manual_consent(tenant.company, actor=tenant.user, **data)
        return Response(self._state(request, phone=phone, channel=channel), status=201)

    def _state(self, request: Request, *, phone: str, channel: str) -> dict[str, Any]:
        company = cast(TenantRequest, request).company
        state = selectors.consent_state(company, phone, channel)
        history = selectors.consent_history(company, phone, channel)[:200]
        return {
            "phone": phone,
            "channel": channel,
            "state": state or "none",
            "opted_out": state == ConsentEvent.Action.OPT_OUT,
            "history": ConsentEventSerializer(history, many=True).data,
        }
