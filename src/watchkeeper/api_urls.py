"""The REST API's routes (/api/v1/), assembled here at the project level: core and each
app (and each sub-package with an API) register viewsets on one router and may add plain
routes, so core imports no app. A new app with an API adds its lines here."""

from django.urls import include, path

from watchkeeper.agents import api as agents_api
from watchkeeper.agents.scripts import api as scripts_api
from watchkeeper.core.api import urls as core_api
from watchkeeper.helpdesk import api as helpdesk_api
from watchkeeper.helpdesk.billing import api as billing_api
from watchkeeper.helpdesk.sla import api as sla_api
from watchkeeper.helpdesk.time import api as time_api
from watchkeeper.inventory import api as inventory_api
from watchkeeper.inventory.discovery import api as discovery_api
from watchkeeper.inventory.imports import api as imports_api
from watchkeeper.inventory.relations import api as relations_api
from watchkeeper.monitoring import api as monitoring_api
from watchkeeper.monitoring.heartbeats import api as heartbeats_api
from watchkeeper.monitoring.history import api as history_api
from watchkeeper.monitoring.poller import api as poller_api
from watchkeeper.patching import api as patching_api

router = core_api.new_router()
for register in (core_api.register, inventory_api.register, imports_api.register,
                 discovery_api.register, relations_api.register, agents_api.register,
                 scripts_api.register, helpdesk_api.register, sla_api.register,
                 time_api.register, billing_api.register, monitoring_api.register,
                 poller_api.register, heartbeats_api.register, patching_api.register):
    register(router)

urlpatterns = [
    *core_api.extra_urls(),
    *helpdesk_api.extra_urls(),
    *monitoring_api.extra_urls(),
    *poller_api.extra_urls(),
    *history_api.extra_urls(),
    path("", include(router.urls)),
]
