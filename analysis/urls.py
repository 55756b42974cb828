"""Analysis routes, mounted under /api/v1/ beside calls' (the isolation suite walks them)."""

from rest_framework.routers import SimpleRouter

from analysis import views

router = SimpleRouter()
router.register("calls", views.CallAnalysisViewSet, basename="call-analysis")

urlpatterns = [*router.urls]
