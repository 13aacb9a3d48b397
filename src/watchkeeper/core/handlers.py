"""Event handlers of the core app (imported by CoreConfig.ready to register them)."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from django.conf import settings

from . import webhooks  # noqa: F401
from .events import subscribe

log = logging.getLogger(__name__)


@subscribe("user.sign_in_alert", name="core.sign_in_alert_mail")
def sign_in_alert_mail(event, handler_name) -> None:
    """Tell the account's owner by mail that someone keeps failing to sign in as them, and
    how to get back in (docs/security.md, 'Lockout'). Without an SMTP host: logged only."""
    from .models import User

    user = User.objects.filter(pk=event.id).first()
    if user is None or not user.email:
        return
    base = settings.BASE_URL.rstrip("/")
    lines = [
        f"Someone failed to sign in to your Watchkeeper account ({user.email}) "
        f"{event.failures} times in a row from devices it does not know"
        + (f", last from address {event.ip}." if event.ip else "."),
        "",
    ]
    if event.locked_until:
        lines.append(f"Sign-ins from unknown devices are paused until {event.locked_until} "
                     "(UTC). A browser you have signed in with before is not affected.")
    lines += [
        "If this was you, nothing needs doing. If not: your password held, but change it "
        f"on your profile ({base}/profile/) and check your API tokens. An administrator can "
        "lift a lock or reset your password if you cannot get in.",
    ]
    if not settings.SMTP_HOST:
        log.warning("sign-in alert for %s not mailed: WATCHKEEPER_SMTP_HOST is not set",
                    user.email)
        return
    msg = EmailMessage()
    msg["From"] = settings.MAIL_FROM
    msg["To"] = user.email
    msg["Subject"] = "Failed sign-ins to your Watchkeeper account"
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=settings.MAIL_DOMAIN)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("\n".join(lines))
    with smtplib.SMTP(settings.SMTP_HOST, settings.SMTP_PORT,
                      timeout=settings.SMTP_TIMEOUT) as smtp:
        if settings.SMTP_STARTTLS:
            smtp.starttls()
        if settings.SMTP_USER:
            smtp.login(settings.SMTP_USER, settings.SMTP_PASSWORD)
        smtp.send_message(msg, from_addr=settings.MAIL_FROM, to_addrs=[user.email])
