"""Analysis routes, mounted under /api/v1/ beside calls' (the isolation suite walks them)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from analysis import views

router = SimpleRouter()
router.register("calls", views.CallAnalysisViewSet, basename="call-analysis")

urlpatterns = [
    *router.urls,
    path("metrics/overview/", views.OverviewView.as_view(), name="metrics-overview"),
    path("metrics/booking-trend/", views.BookingTrendView.as_view(), name="metrics-trend"),
    path("metrics/top-objections/", views.TopObjectionsView.as_view(), name="metrics-objections"),
    path("metrics/reps/", views.RepsView.as_view(), name="metrics-reps"),
    path("metrics/recovery/", views.RecoveryView.as_view(), name="metrics-recovery"),
]
