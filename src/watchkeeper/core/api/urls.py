from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from ..permissions import PUBLIC

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False


class SchemaView(SpectacularAPIView):
    permissions = {"GET": PUBLIC}


class DocsView(SpectacularSwaggerView):
    permissions = {"GET": PUBLIC}


urlpatterns = [
    path("schema", SchemaView.as_view(), name="api-schema"),
    path("docs", DocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include(router.urls)),
]
