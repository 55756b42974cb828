"""Messaging's API routes, mounted under /api/v1/ (the isolation suite walks them)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from messaging import views

router = SimpleRouter()
router.register("threads", views.ThreadViewSet, basename="thread")
router.register("recoveries", views.RecoveryViewSet, basename="recovery")
router.register("followups", views.FollowUpViewSet, basename="followup")

urlpatterns = [path("consent/", views.ConsentView.as_view(), name="consent"), *router.urls]
