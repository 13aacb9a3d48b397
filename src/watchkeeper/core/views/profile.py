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
from ..auth import mfa_required
from ..choices import TokenScope
from ..models import TIMEZONE_CHOICES, ApiToken
from ..permissions import requires
from .form_errors import apply_model_errors

EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("", "Never")]


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
    expires_in = forms.ChoiceField(choices=EXPIRY_CHOICES, required=False, initial="90",
                                   label="Expires after")


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
    user = request.user
    form = TokenForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        days = form.cleaned_data["expires_in"]
        expires_at = timezone.now() + timedelta(days=int(days)) if days else None
        try:
            token, raw = accounts.create_token(actor=user, user=user,
                                               name=form.cleaned_data["name"],
                                               scope=form.cleaned_data["scope"],
                                               expires_at=expires_at)
        except ValidationError as exc:
            apply_model_errors(form, exc)
        else:
            created = {"token": token, "raw": raw}
            form = TokenForm()
    rows = ApiToken.objects.filter(user=user).order_by("revoked_at", "-created_at")
    return render(request, "core/profile/tokens.html",
                  {"form": form, "tokens": rows, "created": created, "now": timezone.now()},
                  status=400 if form.errors else 200)


@requires("profile")
@require_POST
def token_revoke(request, pk: int):
    # Tokens belong to a person, not a tenant: only the owner's own tokens are found here.
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    accounts.revoke_token(actor=request.user, token=token)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("tokens")


token_revoke.wk_model = ApiToken
