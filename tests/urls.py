"""Otto's URLs plus probe views that raise each kind of error the handlers must shape."""

from django.db import connection, transaction
from django.urls import path
from rest_framework import serializers
from rest_framework.decorators import api_view, permission_classes, throttle_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle

from otto.urls import handler400, handler403, handler404, handler500, urlpatterns  # noqa: F401


class BookingSerializer(serializers.Serializer):
    phone = serializers.CharField()
    duration_seconds = serializers.IntegerField(min_value=0)


@api_view(["POST"])
@permission_classes([AllowAny])
def validate(request):
    serializer = BookingSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    return Response(serializer.validated_data)


@api_view(["GET"])
@permission_classes([AllowAny])
def crash(request):
    raise RuntimeError("secret internal detail: password=hunter2")


class OncePerMinute(AnonRateThrottle):
    rate = "1/minute"


@api_view(["GET"])
@permission_classes([AllowAny])
@throttle_classes([OncePerMinute])
def limited(request):
    return Response({"ok": True})


@api_view(["GET"])
@permission_classes([AllowAny])
def slow(request):
    # A runaway query under DATABASE_STATEMENT_TIMEOUT, quickly: the same limit, set for
    # this transaction only.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = '50ms'")
        cursor.execute("SELECT pg_sleep(5)")
    return Response({"ok": True})


@api_view(["GET"])
def private(request):
    return Response({"ok": True})


urlpatterns = [
    *urlpatterns,
    path("api/v1/probe/validate", validate),
    path("api/v1/probe/crash", crash),
    path("api/v1/probe/limited", limited),
    path("api/v1/probe/private", private),
    path("api/v1/probe/slow", slow),
]
