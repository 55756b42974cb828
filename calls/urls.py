"""Calls' routes. ``urlpatterns`` is mounted under /api/v1/ (the isolation suite walks it);
``recording_urlpatterns`` at the site root, outside the API's bearer auth."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from calls import views

router = SimpleRouter()
router.register("calls", views.CallViewSet, basename="call")

urlpatterns = [*router.urls]

recording_urlpatterns = [
    path("recordings/<str:token>", views.recording_file, name="recording-file"),
]
