"""The demo MSP: realistic clients, sites, contacts, staff and webhooks, built through actions.

`watchkeeper demo` (or `watchkeeper up --demo`) calls `load()`, which runs every registered
loader in order, each in its own transaction. Loaders are idempotent: they look each object
up by its natural key and create only what is missing, so running the demo twice adds
nothing. Other apps add their own data with

    from watchkeeper.core.demo import loader

    @loader("inventory", order=200)
    def devices(ctx): ...

in a `demo.py` module of the app (imported by `load()`); `ctx.clients["harbour-view-dental"]`
and `ctx.users["sam.tech@demo-msp.example"]` give them what the core loader made.

Passwords of demo users are generated when the users are created and printed once; they
are one-time passwords that must be changed at first sign-in. Nothing here is a secret.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils.module_loading import autodiscover_modules
from django.utils.text import slugify

from . import actions, crypto
from .choices import Role
from .models import Client, Contact, Site, User, WebhookEndpoint

ACTOR = "demo"
STAFF_DOMAIN = "demo-msp.example"


@dataclass
class DemoContext:
    """What loaders share: the objects made so far and the passwords to print."""

    out: Callable[[str], None]
    clients: dict[str, Client] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    passwords: list[tuple[str, str, str]] = field(default_factory=list)  # email, role, pw
    created: dict[str, int] = field(default_factory=dict)

    def count(self, what: str, n: int = 1) -> None:
        self.created[what] = self.created.get(what, 0) + n


@dataclass(frozen=True)
class Loader:
    name: str
    order: int
    func: Callable[[DemoContext], None]


_loaders: dict[str, Loader] = {}


def loader(name: str, order: int = 100) -> Callable:
    """Register `func(ctx)` as a demo loader; lower `order` runs first (core is 0)."""

    def register(func: Callable[[DemoContext], None]) -> Callable[[DemoContext], None]:
        _loaders[name] = Loader(name, order, func)
        return func

    return register


def loaders() -> list[Loader]:
    return sorted(_loaders.values(), key=lambda item: (item.order, item.name))


def load(out: Callable[[str], None] = print) -> DemoContext:
    """Run every loader (core first); safe to run again."""
    autodiscover_modules("demo")
    ctx = DemoContext(out=out)
    for item in loaders():
        with transaction.atomic():
            item.func(ctx)
    return ctx


# --- The core data ----------------------------------------------------------------------

def _hours(days: range, start: str, end: str) -> dict:
    return {str(day): [[start, end]] for day in days}


WEEKDAYS = range(1, 6)
CLIENTS = [
    {
        "name": "Harbour View Dental", "timezone": "Europe/London",
        "business_hours": _hours(WEEKDAYS, "08:00", "18:00"),
        "notes": "Two-chair practice; imaging PCs must never reboot during surgery hours.",
        "sites": [("Main surgery", "14 Harbour Street\nFalmouth TR11 2AA\nUnited Kingdom")],
        "contacts": [("Dr Priya Natarajan", "priya@harbourviewdental.example", "Principal dentist"),
                     ("Tom Bellamy", "tom@harbourviewdental.example", "Practice manager")],
    },
    {
        "name": "Kessler & Ortiz LLP", "timezone": "America/New_York",
        "business_hours": _hours(WEEKDAYS, "07:30", "19:00"),
        "notes": "Law firm. Document management server is on-premises; litigation holds apply.",
        "sites": [("Manhattan office", "350 Fifth Avenue, Suite 4100\nNew York, NY 10118\nUSA"),
                  ("Newark office", "1 Gateway Center\nNewark, NJ 07102\nUSA")],
        "contacts": [("Helen Kessler", "hkessler@kesslerortiz.example", "Managing partner"),
                     ("Marcus Webb", "mwebb@kesslerortiz.example", "Office administrator")],
    },
    {
        "name": "Northwind Freight Logistics", "timezone": "America/Chicago",
        "business_hours": _hours(range(1, 7), "05:00", "23:00"),
        "notes": "Warehouse scanners and dispatch run six days a week, early to late.",
        "sites": [("Chicago depot", "2200 S Halsted St\nChicago, IL 60608\nUSA"),
                  ("Joliet warehouse", "1400 Arsenal Road\nJoliet, IL 60436\nUSA"),
                  ("Milwaukee cross-dock", "500 W Oklahoma Ave\nMilwaukee, WI 53207\nUSA")],
        "contacts": [("Dana Kowalski", "dana.k@northwindfreight.example", "Operations director"),
                     ("Luis Ferreira", "luis.f@northwindfreight.example", "IT coordinator"),
                     ("Night dispatch desk", "dispatch@northwindfreight.example", "")],
    },
    {
        "name": "St Brigid's Primary School", "timezone": "Europe/Dublin",
        "business_hours": _hours(WEEKDAYS, "07:30", "16:30"),
        "notes": "Term-time only. Classroom laptops are shared; exam weeks are change freezes.",
        "sites": [("School campus", "Church Road\nBlackrock, Co. Dublin A94 X2F3\nIreland")],
        "contacts": [("Siobhán Murphy", "principal@stbrigids.example", "Principal"),
                     ("Ciarán Doyle", "ictcoordinator@stbrigids.example", "ICT coordinator")],
    },
    {
        "name": "Alpine Architekten AG", "timezone": "Europe/Zurich",
        "business_hours": _hours(WEEKDAYS, "08:00", "17:30"),
        "notes": "CAD workstations with large GPUs; nightly renders on the NAS.",
        "sites": [("Zürich studio", "Seefeldstrasse 45\n8008 Zürich\nSwitzerland")],
        "contacts": [("Lena Brunner", "l.brunner@alpine-architekten.example", "Partner")],
    },
    {
        "name": "Greenleaf Veterinary Clinic", "timezone": "Australia/Sydney",
        "business_hours": _hours(range(1, 7), "08:00", "19:00"),
        "notes": "Practice-management software is cloud-hosted; X-ray PC is local.",
        "sites": [("Newtown clinic", "212 King Street\nNewtown NSW 2042\nAustralia")],
        "contacts": [("Dr Aaron Whitfield", "aaron@greenleafvet.example", "Owner vet"),
                     ("Mei Lin", "reception@greenleafvet.example", "Head receptionist")],
    },
    {
        "name": "Summit Accounting Partners", "timezone": "America/Denver",
        "business_hours": _hours(WEEKDAYS, "08:00", "17:00"),
        "notes": "Tax season (Feb-Apr) doubles the hours; MFA mandatory for all staff.",
        "sites": [("Denver office", "1700 Lincoln Street, Floor 12\nDenver, CO 80203\nUSA")],
        "contacts": [("Rachel Adeyemi", "rachel@summitaccounting.example", "Senior partner"),
                     ("Greg Olsen", "greg@summitaccounting.example", "Office manager")],
    },
    {
        "name": "Riverside Community Health", "timezone": "America/Los_Angeles",
        "business_hours": _hours(range(1, 8), "07:00", "21:00"),
        "notes": "Clinic open every day; patient-data systems are in scope for HIPAA.",
        "sites": [("Riverside clinic", "4000 Market Street\nRiverside, CA 92501\nUSA"),
                  ("Mobile unit", "Garage bay 3, 4000 Market Street\nRiverside, CA 92501\nUSA")],
        "contacts": [("Dr Maria Gonzalez", "mgonzalez@riversidehealth.example", "Medical director"),
                     ("Kevin Tran", "ktran@riversidehealth.example", "IT lead")],
    },
]

# email local part, name, role, slugs of assigned clients (technicians) or own client (portal)
STAFF = [
    ("alex.admin", "Alex Morgan", Role.ADMIN, []),
    ("jordan.admin", "Jordan Reyes", Role.ADMIN, []),
    ("sam.tech", "Sam Okafor", Role.TECHNICIAN,
     ["harbour-view-dental", "st-brigids-primary-school", "greenleaf-veterinary-clinic"]),
    ("casey.tech", "Casey Lindqvist", Role.TECHNICIAN,
     ["kessler-ortiz-llp", "summit-accounting-partners"]),
    ("riley.tech", "Riley Chen", Role.TECHNICIAN,
     ["northwind-freight-logistics", "riverside-community-health", "alpine-architekten-ag"]),
    ("dana.dispatch", "Dana Whitaker", Role.DISPATCHER, []),
    ("auditor", "Pat Auditor", Role.READONLY, []),
]
PORTAL_USERS = [
    ("tom@harbourviewdental.example", "Tom Bellamy", "harbour-view-dental"),
    ("luis.f@northwindfreight.example", "Luis Ferreira", "northwind-freight-logistics"),
]
WEBHOOKS = [
    # name, url, client slug (None: every client), event kinds
    ("Team chat relay (demo)", "http://127.0.0.1:9/hooks/chat", None,
     ["client.created", "user.created"]),
    ("Northwind ERP bridge (demo)", "http://127.0.0.1:9/hooks/northwind",
     "northwind-freight-logistics", []),
]


def _client(ctx: DemoContext, spec: dict) -> Client:
    client = Client.objects.filter(name=spec["name"]).first()
    if client is None:
        client = actions.create_client(actor=ACTOR, name=spec["name"], timezone=spec["timezone"],
                                       business_hours=spec["business_hours"],
                                       notes=spec["notes"])
        ctx.count("clients")
    for name, address in spec["sites"]:
        if not Site.objects.filter(client=client, name=name).exists():
            actions.create_site(actor=ACTOR, client=client, name=name, address=address)
            ctx.count("sites")
    first_site = Site.objects.filter(client=client).order_by("id").first()
    for index, (name, email, title) in enumerate(spec["contacts"]):
        if not Contact.objects.filter(client=client, email=email).exists():
            actions.create_contact(actor=ACTOR, client=client, name=name, email=email,
                                   title=title, site=first_site, is_primary=index == 0)
            ctx.count("contacts")
    return client


def _user(ctx: DemoContext, email: str, name: str, role: str, *, client: Client | None = None,
          assigned: list[Client] | None = None) -> User:
    from .accounts import create_user

    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user, password = create_user(actor=ACTOR, email=email, role=role, name=name,
                                     client=client, assigned_clients=assigned or [],
                                     timezone_name=client.timezone if client else "UTC")
        ctx.passwords.append((user.email, role, password))
        ctx.count("users")
    return user


@loader("core", order=0)
def core_data(ctx: DemoContext) -> None:
    for spec in CLIENTS:
        ctx.clients[slugify(spec["name"])] = _client(ctx, spec)
    for local, name, role, slugs in STAFF:
        email = f"{local}@{STAFF_DOMAIN}"
        assigned = [ctx.clients[slug] for slug in slugs]
        ctx.users[email] = _user(ctx, email, name, role, assigned=assigned)
    for email, name, slug in PORTAL_USERS:
        ctx.users[email] = _user(ctx, email, name, Role.CLIENT_USER, client=ctx.clients[slug])
    for name, url, slug, kinds in WEBHOOKS:
        if WebhookEndpoint.objects.filter(name=name).exists():
            continue
        # Inactive: the demo points at a closed local port, so nothing is ever sent.
        actions.create_object(
            actor=ACTOR, model=WebhookEndpoint, name=name, url=url,
            client=ctx.clients[slug] if slug else None, event_kinds=kinds, is_active=False,
            secret_enc=crypto.encrypt(secrets.token_urlsafe(32), "webhook-secret"),
        )
        ctx.count("webhooks")
