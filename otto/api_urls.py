"""The tenant core's API routes; included under ``/api/v1/`` by ``otto.urls``."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from otto import views

router = SimpleRouter()
router.register("contacts", views.ContactViewSet, basename="contact")
router.register("audit", views.AuditEventViewSet, basename="audit-event")

urlpatterns = [
    path("me/", views.MeView.as_view(), name="me"),
    path("company/", views.CompanyView.as_view(), name="company"),
    *router.urls,
]
