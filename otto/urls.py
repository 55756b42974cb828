from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from calls.urls import recording_urlpatterns
from otto import health, metrics

# Each app's API routes, mounted under /api/v1/ (the isolation tests walk all of them).
api_v1: list[URLPattern | URLResolver] = [
    path("", include("otto.api_urls")),
    path("", include("calls.urls")),
    path("", include("analysis.urls")),
    path("", include("appointments.urls")),
    path("", include("messaging.urls")),
]

urlpatterns = [
    path("health", health.live, name="health"),
    path("health/ready", health.ready, name="health-ready"),
    path("health/workers", health.workers, name="health-workers"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include(api_v1)),
    # Signed, short-lived recording links (the local-storage stand-in for S3 presigned URLs).
    *recording_urlpatterns,
    path("", include("integrations.urls")),
]

handler400 = "otto.errors.bad_request"
handler403 = "otto.errors.permission_denied"
handler404 = "otto.errors.page_not_found"
handler500 = "otto.errors.server_error"
