from django.urls import path

from .views import clients, ui

urlpatterns = [
    path("", ui.dashboard, name="dashboard"),
    path("activity/", ui.activity, name="activity"),
    path("portal/", ui.portal, name="portal"),
    path("search/", ui.search, name="search"),
    path("scope/", ui.scope, name="scope"),
    path("clients/", clients.client_list, name="clients"),
    path("clients/export.csv", clients.client_export, name="clients_export"),
    path("clients/new/", clients.client_create, name="client_create"),
    path("clients/<id:pk>/", clients.client_detail, name="client_detail"),
    path("clients/<id:pk>/edit/", clients.client_edit, name="client_edit"),
    path("clients/<id:pk>/delete/", clients.client_delete, name="client_delete"),
    path("clients/<id:pk>/sites/new/", clients.client_site_create, name="client_site_create"),
    path("clients/<id:pk>/contacts/new/", clients.client_contact_create,
         name="client_contact_create"),
    path("sites/", clients.site_list, name="sites"),
    path("sites/new/", clients.site_create, name="site_create"),
    path("sites/<id:pk>/", clients.site_detail, name="site_detail"),
    path("sites/<id:pk>/edit/", clients.site_edit, name="site_edit"),
    path("sites/<id:pk>/delete/", clients.site_delete, name="site_delete"),
    path("contacts/", clients.contact_list, name="contacts"),
    path("contacts/new/", clients.contact_create, name="contact_create"),
    path("contacts/<id:pk>/", clients.contact_detail, name="contact_detail"),
    path("contacts/<id:pk>/edit/", clients.contact_edit, name="contact_edit"),
    path("contacts/<id:pk>/delete/", clients.contact_delete, name="contact_delete"),
]
