"""Sign-in pages: password, MFA code, MFA set-up, forced password change, sign-out.

The password step does not sign the session in when the account has MFA: it remembers the
user id in the session (`wk_pending_user`) and `django.contrib.auth.login()` runs only after a
valid TOTP or recovery code. A session that is signed in but still owes a step (password
change, MFA set-up) is sent here by PermissionMiddleware; the views it may reach carry
`wk_allowed_during_setup = True`.
"""

from __future__ import annotations

import time

import segno
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from .. import accounts
from ..auth import SESSION_MFA_VERIFIED, mfa_required, pending_security_step
from ..models import ApiToken, User
from ..permissions import public, requires
from .form_errors import apply_model_errors

SESSION_PENDING_USER = "wk_pending_user"
SESSION_PENDING_AT = "wk_pending_at"
SESSION_PENDING_NEXT = "wk_pending_next"
SESSION_MFA_SECRET = "wk_mfa_setup_secret"
PENDING_SECONDS = 300  # the MFA step must follow the password within five minutes


DEVICE_COOKIE = "wk_device"
DEVICE_SALT = "watchkeeper.core.device"
DEVICE_COOKIE_DAYS = 400


def device_id(request) -> str | None:
    """The random id of this browser's device cookie, if it carries a valid one."""
    from django.core import signing

    raw = request.COOKIES.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        return signing.loads(raw, salt=DEVICE_SALT)
    except signing.BadSignature:
        return None


def remember_device(response, device: str):
    """Mark this browser as one the account has signed in from (see accounts.recognised)."""
    from django.core import signing

    response.set_cookie(DEVICE_COOKIE, signing.dumps(device, salt=DEVICE_SALT),
                        max_age=DEVICE_COOKIE_DAYS * 86400, httponly=True,
                        secure=settings.SESSION_COOKIE_SECURE, samesite="Lax")
    return response


def allowed_during_setup(view):
    view.wk_allowed_during_setup = True
    return view


def _safe_next(request, candidate: str | None) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse(settings.LOGIN_REDIRECT_URL)


def _after_sign_in(request, next_url: str):
    # A session that still owes a step goes there first; the middleware would send it
    # anyway, but going directly saves a redirect.
    return redirect(pending_security_step(request) or next_url)


class LoginForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={
        "autocomplete": "username", "autofocus": True, "autocapitalize": "none",
        "spellcheck": "false"}))
    password = forms.CharField(strip=False, widget=forms.PasswordInput(attrs={
        "autocomplete": "current-password"}))


class CodeForm(forms.Form):
    code = forms.CharField(max_length=40, label="Authentication code", widget=forms.TextInput(
        attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True,
               "autocapitalize": "none", "spellcheck": "false"}))


class PasswordChangeForm(forms.Form):
    old_password = forms.CharField(label="Current password", strip=False,
                                   widget=forms.PasswordInput(
                                       attrs={"autocomplete": "current-password"}))
    new_password = forms.CharField(label="New password", strip=False,
                                   help_text="At least 12 characters; not a common password.",
                                   widget=forms.PasswordInput(
                                       attrs={"autocomplete": "new-password"}))
    new_password2 = forms.CharField(label="New password again", strip=False,
                                    widget=forms.PasswordInput(
                                        attrs={"autocomplete": "new-password"}))
    tokens = forms.ChoiceField(
        label="Your API tokens", required=False, initial="revoke", widget=forms.RadioSelect,
        choices=[("revoke", "Revoke them (recommended if the password may be known)"),
                 ("keep", "Keep them working")])

    def clean(self):
        data = super().clean()
        if data.get("new_password") and data.get("new_password") != data.get("new_password2"):
            self.add_error("new_password2", "The two new passwords differ.")
        return data


@public
@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login(request):
    if request.user.is_authenticated and not pending_security_step(request):
        return redirect(_safe_next(request, request.GET.get("next")))
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    form = LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = accounts.check_credentials(email=form.cleaned_data["email"],
                                              password=form.cleaned_data["password"],
                                              ip=request.client_ip, device=device_id(request))
        except accounts.SlowDown as exc:
            form.add_error(None, str(exc))
            response = render(request, "core/auth/login.html", {"form": form, "next": next_url},
                              status=429)
            response["Retry-After"] = str(exc.seconds)
            return response
        except accounts.LoginRefused as exc:
            form.add_error(None, str(exc))
        else:
            target = _safe_next(request, next_url)
            if user.mfa_enabled:
                request.session.cycle_key()
                request.session[SESSION_PENDING_USER] = user.pk
                request.session[SESSION_PENDING_AT] = int(time.time())
                request.session[SESSION_PENDING_NEXT] = target
                return redirect("mfa_verify")
            device = accounts.sign_in(request, user, mfa_verified=False,
                                      device=device_id(request))
            return remember_device(_after_sign_in(request, target), device)
    status = 400 if form.errors else 200
    return render(request, "core/auth/login.html", {"form": form, "next": next_url},
                  status=status)


def _pending_user(request) -> User | None:
    """The user who passed the password step in this session, if still fresh."""
    if request.user.is_authenticated:
        return request.user if request.user.mfa_enabled else None
    pk, at = request.session.get(SESSION_PENDING_USER), request.session.get(SESSION_PENDING_AT)
    if pk is None or at is None or time.time() - at > PENDING_SECONDS:
        return None
    return User.objects.filter(pk=pk, is_active=True).first()


@public
@sensitive_post_parameters("code")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def mfa_verify(request):
    user = _pending_user(request)
    if user is None:
        if request.user.is_authenticated:
            return redirect(pending_security_step(request) or reverse("dashboard"))
        messages.info(request, "Sign in again: the code step timed out.")
        return redirect("login")
    if request.user.is_authenticated and request.session.get(SESSION_MFA_VERIFIED):
        return redirect(pending_security_step(request) or reverse("dashboard"))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"].strip()
        known = accounts.recognised(user, device=device_id(request), ip=request.client_ip)
        if (accounts.is_locked(user, known=known) or accounts.ip_limited(request.client_ip)
                or accounts.retry_after(user=user, ip=request.client_ip, known=known)):
            form.add_error(None, accounts.LOGIN_REFUSED)
        else:
            method = None
            if accounts.verify_totp(user, code):
                method = "totp"
            elif accounts.use_recovery_code(user, code):
                method = "recovery_code"
            if method:
                target = request.session.pop(SESSION_PENDING_NEXT, None) or reverse("dashboard")
                request.session.pop(SESSION_PENDING_USER, None)
                request.session.pop(SESSION_PENDING_AT, None)
                device = None
                if request.user.is_authenticated:
                    request.session[SESSION_MFA_VERIFIED] = True
                else:
                    device = accounts.sign_in(request, user, mfa_verified=True, method=method,
                                              device=device_id(request))
                if method == "recovery_code":
                    left = accounts.recovery_codes_left(user)
                    messages.warning(request, f"You used a recovery code; {left} left. "
                                              "Generate new ones on your profile.")
                response = _after_sign_in(request, target)
                return remember_device(response, device) if device else response
            accounts.record_login_failure(email=user.email, user=user, ip=request.client_ip,
                                          reason="bad_mfa_code", known=known)
            form.add_error("code", "That code is not valid or was already used.")
    status = 400 if form.errors else 200
    return render(request, "core/auth/mfa_verify.html", {"form": form}, status=status)


def _qr_svg(uri: str) -> str:
    return segno.make(uri, error="m").svg_inline(scale=5, dark="#111", light="#fff",
                                                 title="MFA set-up QR code")


def _grouped(secret: str) -> str:
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


@requires("profile")
@allowed_during_setup
@sensitive_post_parameters("code")
@never_cache
@require_http_methods(["GET", "POST"])
def mfa_setup(request):
    user = request.user
    if user.mfa_enabled:
        messages.info(request, "Two-factor authentication is already set up.")
        return redirect("profile")
    secret = request.session.get(SESSION_MFA_SECRET)
    if not secret:
        secret = request.session[SESSION_MFA_SECRET] = accounts.new_totp_secret()
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            codes = accounts.enable_mfa(actor=user, user=user, secret=secret,
                                        code=form.cleaned_data["code"])
        except ValidationError as exc:
            apply_model_errors(form, exc)
        else:
            request.session.pop(SESSION_MFA_SECRET, None)
            request.session[SESSION_MFA_VERIFIED] = True
            return render(request, "core/auth/recovery_codes.html",
                          {"codes": codes, "next": pending_security_step(request)
                           or reverse("dashboard"), "first_time": True})
    uri = accounts.provisioning_uri(user, secret)
    return render(request, "core/auth/mfa_setup.html", {
        "form": form, "qr_svg": _qr_svg(uri), "manual_key": _grouped(secret),
        "required": mfa_required(user),
    }, status=400 if form.errors else 200)


@requires("profile")
@allowed_during_setup
@sensitive_post_parameters("old_password", "new_password", "new_password2")
@never_cache
@require_http_methods(["GET", "POST"])
def password_change(request):
    user = request.user
    form = PasswordChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            accounts.change_password(actor=user, user=user,
                                     old_password=form.cleaned_data["old_password"],
                                     new_password=form.cleaned_data["new_password"],
                                     keep_tokens=form.cleaned_data.get("tokens") == "keep")
        except ValidationError as exc:
            apply_model_errors(form, exc)
        else:
            update_session_auth_hash(request, user)
            messages.success(request, "Your password was changed.")
            return redirect(pending_security_step(request) or reverse("profile"))
    # Inside the product (voluntary change) the page keeps the shell; a session that still
    # owes a step sees the bare public layout, since it cannot use the navigation anyway.
    owes_step = pending_security_step(request) is not None
    return render(request, "core/auth/password_change.html",
                  {"form": form, "forced": user.must_change_password,
                   "active_tokens": ApiToken.objects.filter(
                       user=user, revoked_at__isnull=True).count(),
                   "base_template": "base_public.html" if owes_step else "base.html"},
                  status=400 if form.errors else 200)


@public
@require_POST
def logout(request):
    accounts.sign_out(request)
    messages.info(request, "You are signed out.")
    return redirect("login")
