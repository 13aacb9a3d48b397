"""User and role administration: list, create, edit (reset MFA, deactivate), role matrix."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from .. import accounts
from ..auth import mfa_required
from ..choices import Role
from ..models import (
    TIMEZONE_CHOICES,
    ApiToken,
    AuditEntry,
    Client,
    RolePolicy,
    SecurityPolicy,
    User,
)
from ..permissions import CAPABILITIES, MFA_REQUIRED_BY_DEFAULT, ROLE_CAPABILITIES, requires
from ..tenancy import scoped
from .form_errors import apply_model_errors


class UserForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    name = forms.CharField(max_length=200, required=False)
    role = forms.ChoiceField(choices=Role.choices)
    client = forms.ModelChoiceField(queryset=Client.objects.none(), required=False,
                                    help_text="Client users only: the client they belong to.")
    assigned_clients = forms.ModelMultipleChoiceField(
        queryset=Client.objects.none(), required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Technicians only: the clients they work for.")
    timezone = forms.ChoiceField(choices=TIMEZONE_CHOICES, initial="UTC", label="Time zone")

    def __init__(self, *args, actor, editing: User | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        clients = scoped(Client.objects.filter(is_active=True), actor)
        self.fields["client"].queryset = clients
        self.fields["assigned_clients"].queryset = clients
        if actor.role != Role.OWNER:
            # Only owners grant the owner role (accounts._check_role_grant enforces it too).
            self.fields["role"].choices = [c for c in Role.choices if c[0] != Role.OWNER]
        if editing is not None:
            self.fields["email"].disabled = True


@requires("users.view")
@never_cache
def users(request):
    qs = (User.objects.select_related("client")
          .prefetch_related("assigned_clients").order_by("email"))
    q = request.GET.get("q", "").strip()
    role = request.GET.get("role", "")
    status = request.GET.get("status", "active")
    mfa = request.GET.get("mfa", "")
    if q:
        qs = qs.filter(Q(email__icontains=q) | Q(name__icontains=q))
    if role in Role.values:
        qs = qs.filter(role=role)
    if status == "active":
        qs = qs.filter(is_active=True)
    elif status == "inactive":
        qs = qs.filter(is_active=False)
    if mfa == "on":
        qs = qs.filter(mfa_enabled_at__isnull=False)
    elif mfa == "off":
        qs = qs.filter(mfa_enabled_at__isnull=True)
    counts = dict(User.objects.values_list("role").annotate(n=Count("id")))
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    filtered = bool(q or role or mfa or status != "active")
    return render(request, "core/admin/users.html", {
        "page": page, "q": q, "role": role, "status": status, "mfa": mfa,
        "roles": [(value, label, counts.get(value, 0)) for value, label in Role.choices],
        "filtered": filtered,
        "can_manage": "users.manage" in ROLE_CAPABILITIES.get(request.user.role, ()),
    })


@requires("users.manage")
@never_cache
@require_http_methods(["GET", "POST"])
def user_create(request):
    form = UserForm(request.POST or None, actor=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user, password = accounts.create_user(
                actor=request.user, email=data["email"], role=data["role"], name=data["name"],
                client=data["client"] if data["role"] == Role.CLIENT_USER else None,
                assigned_clients=data["assigned_clients"]
                if data["role"] == Role.TECHNICIAN else (),
                timezone_name=data["timezone"])
        except (ValidationError, PermissionDenied) as exc:
            if isinstance(exc, PermissionDenied):
                form.add_error("role", str(exc))
            else:
                apply_model_errors(form, exc)
        else:
            return render(request, "core/admin/user_created.html",
                          {"new_user": user, "password": password})
    return render(request, "core/admin/user_form.html", {"form": form, "editing": None},
                  status=400 if form.errors else 200)


def _user_history(request, user: User):
    return (scoped(AuditEntry.objects.filter(object_type="core.user", object_id=str(user.pk)),
                   request.user).select_related("actor")[:25])


@requires("users.manage")
@never_cache
@require_http_methods(["GET", "POST"])
def user_edit(request, pk: int):
    # Users are not tenant-owned rows; who may edit them is decided by users.manage.
    target = get_object_or_404(User.objects.select_related("client"), pk=pk)
    initial = {"email": target.email, "name": target.name, "role": target.role,
               "client": target.client, "timezone": target.timezone,
               "assigned_clients": list(target.assigned_clients.all())}
    action = request.POST.get("action", "save")
    form = UserForm(request.POST if action == "save" and request.method == "POST" else None,
                    actor=request.user, editing=target, initial=initial)
    if request.method == "POST":
        try:
            if action == "reset_mfa":
                accounts.reset_mfa(actor=request.user, user=target)
                messages.success(request, f"MFA of {target.email} was reset; they set it up "
                                          "again at next sign-in.")
                return redirect("user_edit", pk=target.pk)
            if action == "deactivate":
                accounts.deactivate_user(actor=request.user, user=target)
                messages.success(request, f"{target.email} was deactivated.")
                return redirect("user_edit", pk=target.pk)
            if action == "reactivate":
                accounts.update_user(actor=request.user, user=target, is_active=True)
                messages.success(request, f"{target.email} was reactivated.")
                return redirect("user_edit", pk=target.pk)
            if action == "reset_password":
                password = accounts.reset_password(actor=request.user, user=target)
                return render(request, "core/admin/user_created.html",
                              {"new_user": target, "password": password, "reset": True})
            if action == "unlock":
                accounts.unlock_user(actor=request.user, user=target)
                messages.success(request, f"{target.email} was unlocked.")
                return redirect("user_edit", pk=target.pk)
            if action == "end_sessions":
                ended = accounts.end_sessions(user=target)
                messages.success(request, f"{ended} session(s) of {target.email} ended.")
                return redirect("user_edit", pk=target.pk)
            if action == "revoke_tokens":
                revoked = accounts.revoke_all_tokens(actor=request.user, user=target,
                                                     reason="revoked by an administrator")
                messages.success(request, f"{revoked} token(s) of {target.email} revoked.")
                return redirect("user_edit", pk=target.pk)
            if action != "save":
                raise Http404("unknown action")
            if form.is_valid():
                data = form.cleaned_data
                accounts.update_user(
                    actor=request.user, user=target, name=data["name"], role=data["role"],
                    client=data["client"] if data["role"] == Role.CLIENT_USER else None,
                    timezone=data["timezone"],
                    assigned_clients=data["assigned_clients"]
                    if data["role"] == Role.TECHNICIAN else [])
                messages.success(request, f"{target.email} was saved.")
                return redirect("user_edit", pk=target.pk)
        except PermissionDenied as exc:
            messages.error(request, str(exc))
            if action == "save":
                form.add_error(None, str(exc))
        except ValidationError as exc:
            if action == "save":
                apply_model_errors(form, exc)
            else:
                messages.error(request, " ".join(exc.messages))
                return redirect("user_edit", pk=target.pk)
    return render(request, "core/admin/user_form.html", {
        "form": form, "editing": target, "history": _user_history(request, target),
        "locked": accounts.is_locked(target), "is_self": target.pk == request.user.pk,
        "sessions": accounts.active_sessions(target),
        "tokens": ApiToken.objects.filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()), user=target,
            revoked_at__isnull=True),
    }, status=400 if form.errors else 200)


user_edit.wk_model = User


@requires("users.view")
@never_cache
def roles(request):
    policies = {p.role: p.mfa_required for p in RolePolicy.objects.all()}
    can_manage = "users.manage" in ROLE_CAPABILITIES.get(request.user.role, ())
    role_rows = []
    for value, label in Role.choices:
        probe = User(role=value)
        role_rows.append({
            "value": value, "label": label, "mfa_required": mfa_required(probe),
            "is_default": value not in policies,
            "default": value in MFA_REQUIRED_BY_DEFAULT,
            "users": User.objects.filter(role=value, is_active=True).count(),
            "can_change": can_manage and (request.user.role == Role.OWNER
                                          or value not in accounts.PRIVILEGED_ROLES),
        })
    matrix = [{"capability": cap, "label": label,
               "roles": [cap in ROLE_CAPABILITIES.get(value, ()) for value, _ in Role.choices]}
              for cap, label in CAPABILITIES.items()]
    history = (scoped(AuditEntry.objects.filter(object_type="core.rolepolicy"), request.user)
               .select_related("actor")[:20])
    return render(request, "core/admin/roles.html", {
        "role_rows": role_rows, "matrix": matrix, "history": history,
        "can_manage": can_manage, "is_owner": request.user.role == Role.OWNER,
        "token_max_days": SecurityPolicy.current().token_max_days,
        "msp_networks": "\n".join(SecurityPolicy.current().probe_networks or []),
    })


@requires("users.manage")
@require_POST
def probe_policy(request):
    """The MSP's own probe networks (checks with no client); owners only."""
    try:
        accounts.set_msp_probe_networks(actor=request.user,
                                        networks=request.POST.get("probe_networks", "").split())
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Probe networks saved.")
    return redirect("roles")


@requires("users.manage")
@require_POST
def token_policy(request):
    """The owner's limit on API token lifetime (accounts.set_token_max_days checks owner)."""
    try:
        days = int(request.POST.get("token_max_days", ""))
        accounts.set_token_max_days(actor=request.user, days=days)
    except (ValueError, ValidationError):
        messages.error(request, "Give a whole number of days from 1 to 3650.")
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"New API tokens now expire within {days} days at most.")
    return redirect("roles")


@requires("users.manage")
@require_POST
def role_policy(request, role: str):
    if role not in Role.values:
        raise Http404("unknown role")
    required = request.POST.get("mfa_required") == "on"
    try:
        accounts.set_role_policy(actor=request.user, role=role, mfa_required=required)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
        return redirect("roles")
    label = Role(role).label
    messages.success(request, f"MFA is now {'required' if required else 'optional'} "
                              f"for {label}.")
    return redirect("roles")
