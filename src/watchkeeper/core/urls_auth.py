"""Sign-in, profile, API tokens, and user and role administration pages."""

from django.urls import path

from .views import admin_users, auth, profile

urlpatterns = [
    path("login/", auth.login, name="login"),
    path("logout/", auth.logout, name="logout"),
    path("login/code/", auth.mfa_verify, name="mfa_verify"),
    path("profile/mfa/setup/", auth.mfa_setup, name="mfa_setup"),
    path("profile/password/", auth.password_change, name="password_change"),
    path("profile/", profile.profile, name="profile"),
    path("profile/recovery-codes/", profile.recovery_codes_regenerate,
         name="recovery_codes_regenerate"),
    path("profile/tokens/", profile.tokens, name="tokens"),
    path("profile/tokens/<id:pk>/revoke/", profile.token_revoke, name="token_revoke"),
    path("admin/users/", admin_users.users, name="users"),
    path("admin/users/new/", admin_users.user_create, name="user_create"),
    path("admin/users/<id:pk>/", admin_users.user_edit, name="user_edit"),
    path("admin/roles/", admin_users.roles, name="roles"),
    path("admin/roles/tokens/", admin_users.token_policy, name="token_policy"),
    path("admin/roles/probe-networks/", admin_users.probe_policy, name="probe_policy"),
    path("admin/roles/<str:role>/policy/", admin_users.role_policy, name="role_policy"),
]
