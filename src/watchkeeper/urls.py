from django.urls import include, path

urlpatterns = [
    path("", include("watchkeeper.core.urls_health")),
    path("", include("watchkeeper.core.urls_auth")),
    path("", include("watchkeeper.core.urls_ui")),
    path("", include("watchkeeper.core.urls_admin")),
    path("", include("watchkeeper.inventory.urls")),
    path("", include("watchkeeper.agents.urls")),
    path("", include("watchkeeper.helpdesk.urls")),
    path("", include("watchkeeper.monitoring.urls")),
    path("", include("watchkeeper.patching.urls")),
    path("api/v1/", include("watchkeeper.api_urls")),
    path("agent/v1/", include("watchkeeper.agents.checkin.urls")),
]

# problem+json under /api/, an HTML page elsewhere (core/api/views.py)
handler400 = "watchkeeper.core.api.views.bad_request"
handler403 = "watchkeeper.core.forbidden.handler403"
handler404 = "watchkeeper.core.api.views.not_found"
handler500 = "watchkeeper.core.api.views.server_error"
