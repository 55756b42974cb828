"""The outcomes API's routes, mounted under /api/v1/ (the isolation suite walks them)."""

from rest_framework.routers import SimpleRouter

from appointments import views

router = SimpleRouter()
router.register("leads", views.LeadViewSet, basename="lead")
router.register("appointments", views.AppointmentViewSet, basename="appointment")
router.register("tasks", views.TaskViewSet, basename="task")
router.register("signals", views.KeySignalViewSet, basename="signal")

urlpatterns = [*router.urls]
