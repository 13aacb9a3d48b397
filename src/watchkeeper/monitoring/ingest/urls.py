"""Routes of alert ingestion: the pages (the endpoints are under /api/v1/, api.py)."""

from django.urls import path

from . import views

urlpatterns = [
    path("monitoring/ingest/", views.source_list, name="monitoring_ingest_sources"),
    path("monitoring/ingest/<id:pk>/revoke/", views.source_revoke,
         name="monitoring_ingest_revoke"),
]
