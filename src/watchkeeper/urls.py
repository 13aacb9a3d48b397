from django.urls import include, path

urlpatterns = [
    path("", include("watchkeeper.core.urls_health")),
    path("", include("watchkeeper.core.urls_auth")),
    path("", include("watchkeeper.core.urls_ui")),
    path("api/v1/", include("watchkeeper.core.api.urls")),
]
