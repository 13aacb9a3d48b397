import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "watchkeeper.settings")
django_application = get_asgi_application()

# Ordinary agent check-ins take the lean path (agents/checkin/fastpath.py); everything
# else, and every check-in the lean path hands back, is Django's.
from watchkeeper.agents.checkin.fastpath import AgentIngestApp  # noqa: E402
from watchkeeper.core.limits import RequestLimits  # noqa: E402
from watchkeeper.monitoring.heartbeat_lean import HeartbeatApp  # noqa: E402

# Outermost: body size and time limits, checked before anything reads a body. Heartbeat
# pings take their lean path too (monitoring/heartbeat_lean.py).
application = RequestLimits(HeartbeatApp(AgentIngestApp(django_application)))
