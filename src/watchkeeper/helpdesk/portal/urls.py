"""Routes of the client portal's ticket pages and the satisfaction survey."""

from django.urls import path

from . import views

urlpatterns = [
    path("portal/tickets/", views.portal_tickets, name="portal_tickets"),
    path("portal/tickets/new", views.portal_ticket_new, name="portal_ticket_new"),
    path("portal/tickets/<id:pk>/", views.portal_ticket, name="portal_ticket"),
    path("portal/tickets/<id:pk>/reply", views.portal_reply, name="portal_reply"),
    path("portal/attachments/<id:pk>", views.portal_attachment,
         name="portal_attachment"),
    path("survey/", views.csat_survey, name="csat_survey"),
]
