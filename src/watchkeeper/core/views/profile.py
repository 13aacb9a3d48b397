"""One's own profile: name, time zone, password, MFA status, recovery codes, API tokens."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from .. import accounts
from ..auth import mfa_required, recently_authenticated
from ..choices import TokenScope
from ..models import TIMEZONE_CHOICES, ApiToken, SecurityPolicy
from ..permissions import requires
from .form_errors import apply_model_errors

EXPIRY_CHOICES = [(7, "7 days"), (30, "30 days"), (90, "90 days"), (365, "1 year"),
                  (730, "2 years")]


class ProfileForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, widget=forms.TextInput(
        attrs={"autocomplete": "name"}))
    timezone = forms.ChoiceField(choices=TIMEZONE_CHOICES, label="Time zone",
                                 help_text="Times are shown in this zone.")


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Where the token is used, e.g. "
                                                    "“backup script on nas01”.")
    scope = forms.ChoiceField(choices=TokenScope.choices, initial=TokenScope.READ,
                              help_text="Read tokens can only use GET requests.")
    expires_in = forms.TypedChoiceField(choices=EXPIRY_CHOICES, coerce=int, initial=30,
                                        label="Expires after")

    def __init__(self, *args, max_days: int, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(d, label) for d, label in EXPIRY_CHOICES if d <= max_days]
        if not any(d == max_days for d, _ in choices):
            choices.append((max_days, f"{max_days} days (the longest allowed)"))
        self.fields["expires_in"].choices = choices
        self.fields["expires_in"].help_text = (f"Every token expires; the owner allows at most "
                                               f"{max_days} days.")


class ConfirmForm(forms.Form):
    password = forms.CharField(strip=False, widget=forms.PasswordInput(
        attrs={"autocomplete": "current-password"}))
    code = forms.CharField(max_length=40, required=False, label="Authentication code",
                           help_text="From your authenticator app, or a recovery code.",
                           widget=forms.TextInput(attrs={"autocomplete": "one-time-code",
                                                         "inputmode": "numeric"}))


@requires("profile")
@never_cache
@require_http_methods(["GET", "POST"])
def profile(request):
    user = request.user
    form = ProfileForm(request.POST or None,
                       initial={"name": user.name, "timezone": user.timezone})
    if request.method == "POST" and form.is_valid():
        try:
            accounts.update_profile(actor=user, name=form.cleaned_data["name"],
                                    timezone_name=form.cleaned_data["timezone"])
        except ValidationError as exc:
            apply_model_errors(form, exc)
        else:
            messages.success(request, "Profile saved.")
            return redirect("profile")
    return render(request, "core/profile/profile.html", {
        "form": form,
        "mfa_required": mfa_required(user),
        "codes_left": accounts.recovery_codes_left(user) if user.mfa_enabled else 0,
        "active_tokens": ApiToken.objects.filter(user=user, revoked_at__isnull=True).count(),
    }, status=400 if form.errors else 200)


@requires("profile")
@never_cache
@require_POST
def recovery_codes_regenerate(request):
    try:
        codes = accounts.regenerate_recovery_codes(actor=request.user, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("profile")
    return render(request, "core/auth/recovery_codes.html",
                  {"codes": codes, "next": "profile", "first_time": False})


@requires("profile")
@never_cache
@require_http_methods(["GET", "POST"])
def tokens(request):
    """Your tokens. Minting one needs a sign-in or a confirmation of your password (and MFA
    code) within the last REAUTH_MINUTES: a session left open is not enough."""
    from .auth import device_id

    user = request.user
    max_days = SecurityPolicy.current().token_max_days
    recent = recently_authenticated(request)
    form = TokenForm(max_days=max_days)
    confirm = ConfirmForm()
    created = None
    status = 200
    if request.method == "POST" and request.POST.get("step") == "confirm":
        confirm = ConfirmForm(request.POST)
        if confirm.is_valid():
            try:
                accounts.confirm_identity(request, password=confirm.cleaned_data["password"],
                                          code=confirm.cleaned_data["code"],
                                          device=device_id(request))
            except accounts.LoginRefused as exc:
                confirm.add_error(None, str(exc))
            else:
                messages.success(request, "Confirmed. You can create a token now.")
                return redirect("tokens")
        status = 400
    elif request.method == "POST":
        form = TokenForm(request.POST, max_days=max_days)
        if not recent:
            form.add_error(None, "Confirm it's you first: a new token needs a recent sign-in.")
        elif form.is_valid():
            expires_at = timezone.now() + timedelta(days=form.cleaned_data["expires_in"])
            try:
                token, raw = accounts.create_token(actor=user, user=user,
                                                   name=form.cleaned_data["name"],
                                                   scope=form.cleaned_data["scope"],
                                                   expires_at=expires_at)
            except ValidationError as exc:
                apply_model_errors(form, exc)
            else:
                created = {"token": token, "raw": raw}
                form = TokenForm(max_days=max_days)
        if form.errors:
            status = 400
    rows = ApiToken.objects.filter(user=user).order_by("revoked_at", "-created_at")
    return render(request, "core/profile/tokens.html",
                  {"form": form, "confirm": confirm, "recent": recent, "tokens": rows,
                   "created": created, "now": timezone.now(), "role_label":
                   user.get_role_display()}, status=status)


@requires("profile")
@require_POST
def token_revoke(request, pk: int):
    # Tokens belong to a person, not a tenant: only the owner's own tokens are found here.
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    accounts.revoke_token(actor=request.user, token=token)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("tokens")


token_revoke.wk_model = ApiToken
