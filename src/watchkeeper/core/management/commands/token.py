"""`watchkeeper token create|list|revoke`: personal API tokens from the command line."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from watchkeeper.core import accounts
from watchkeeper.core.choices import TokenScope
from watchkeeper.core.models import ApiToken, SecurityPolicy, User


class Command(BaseCommand):
    help = ("Manage personal API tokens. `token create` prints only the raw token on stdout "
            "(shown once), so `TOKEN=$(watchkeeper token create --user E --scope read)` works; "
            "`token list` shows a user's tokens; `token revoke PREFIX` revokes one.")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        create = sub.add_parser("create", help="Create a token and print it once.")
        create.add_argument("--user", required=True, metavar="EMAIL", help="Owner of the token.")
        create.add_argument("--scope", required=True, choices=TokenScope.values,
                            help="read: GET requests only; write: all methods the user's role "
                                 "allows.")
        create.add_argument("--name", default="cli", help="Where the token is used (default: cli).")
        create.add_argument("--expires-days", type=int, metavar="D",
                            help="Expire after D days (default and maximum: the owner's token "
                                 "lifetime limit, 90 days unless changed).")
        listing = sub.add_parser("list", help="List a user's tokens (never the raw values).")
        listing.add_argument("--user", required=True, metavar="EMAIL")
        revoke = sub.add_parser("revoke", help="Revoke a token by its prefix.")
        revoke.add_argument("prefix", metavar="PREFIX",
                            help="The part after wk_ (a full token is accepted too).")

    def handle(self, *args, subcommand, **options):
        return getattr(self, f"_{subcommand}")(**options)

    def _user(self, email: str) -> User:
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"No user with email {email!r}.")
        return user

    def _create(self, *, user, scope, name, expires_days, **_):
        owner = self._user(user)
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be at least 1.")
        days = expires_days or SecurityPolicy.current().token_max_days
        expires_at = timezone.now() + timedelta(days=days)
        try:
            _token, raw = accounts.create_token(actor="cli:token", user=owner, name=name,
                                                scope=scope, expires_at=expires_at)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(raw)

    def _list(self, *, user, **_):
        owner = self._user(user)
        rows = ApiToken.objects.filter(user=owner).order_by("-created_at")
        if not rows:
            self.stderr.write(f"{owner.email} has no API tokens.")
            return
        self.stdout.write(f"{'PREFIX':<14} {'NAME':<24} {'SCOPE':<6} {'STATUS':<8} "
                          f"{'CREATED':<17} {'EXPIRES':<17} LAST USED")
        fmt = "%Y-%m-%d %H:%M"
        for t in rows:
            state = "revoked" if t.revoked_at else ("active" if t.is_active else "expired")
            expires = t.expires_at.strftime(fmt) if t.expires_at else "never"
            used = (f"{t.last_used_at.strftime(fmt)} from {t.last_used_ip or '?'}"
                    if t.last_used_at else "never")
            self.stdout.write(f"{t.prefix:<14} {t.name[:24]:<24} {t.scope:<6} {state:<8} "
                              f"{t.created_at.strftime(fmt):<17} {expires:<17} {used}")

    def _revoke(self, *, prefix, **_):
        value = prefix.strip()
        if value.startswith("wk_"):
            value = value.split("_")[1] if value.count("_") >= 1 else value
        token = ApiToken.objects.filter(prefix=value).select_related("user").first()
        if token is None:
            raise CommandError(f"No token with prefix {value!r}.")
        if token.revoked_at:
            raise CommandError(f"Token {value} was already revoked.")
        accounts.revoke_token(actor="cli:token", token=token)
        self.stderr.write(f"Revoked token {value} ({token.name}) of {token.user.email}.")
