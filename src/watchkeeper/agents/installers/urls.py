from django.urls import path

from . import views

urlpatterns = [
    path("install.sh", views.install_sh, name="agent-install-sh"),
    path("install.ps1", views.install_ps1, name="agent-install-ps1"),
    path("dist/", views.dist_index, name="agent-dist-index"),
    path("dist/<str:name>", views.dist_file, name="agent-dist-file"),
]
