"""Users, one's own profile and personal API tokens over the REST API.

Users are not tenant-owned rows (staff see every user when their role has `users.view`),
so these viewsets do not go through scoped(); the client references a request names do.
Writes go through core.accounts, so each has its audit row and event.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from .. import accounts
from ..auth import recently_authenticated
from ..models import ApiToken, Client, User
from ..tenancy import scoped
from .permissions import DeclaredMethodsMixin


class _ScopedClientField(serializers.PrimaryKeyRelatedField):
    """A client id limited to the clients the requesting user may see."""

    def get_queryset(self):
        request = self.context.get("request")
        return scoped(Client.objects.all(), request.user if request else None)


class UserSerializer(serializers.ModelSerializer):
    mfa_enabled = serializers.BooleanField(read_only=True)
    client = _ScopedClientField(required=False, allow_null=True)
    assigned_clients = _ScopedClientField(many=True, required=False)

    class Meta:
        model = User
        fields = ["id", "email", "name", "role", "client", "assigned_clients", "is_active",
                  "timezone", "mfa_enabled", "must_change_password", "last_login",
                  "date_joined"]
        read_only_fields = ["id", "is_active", "mfa_enabled", "must_change_password",
                            "last_login", "date_joined"]
        # Uniqueness is checked by the action; a new user needs a role (no silent default).
        extra_kwargs = {"email": {"validators": []}, "role": {"required": True}}


class UserUpdateSerializer(UserSerializer):
    class Meta(UserSerializer.Meta):
        read_only_fields = ["id", "email", "mfa_enabled", "must_change_password",
                            "last_login", "date_joined"]


class UserCreatedSerializer(UserSerializer):
    one_time_password = serializers.CharField(
        read_only=True, help_text="Shown only in this response; the user must change it.")

    class Meta(UserSerializer.Meta):
        fields = [*UserSerializer.Meta.fields, "one_time_password"]


class MeSerializer(serializers.ModelSerializer):
    mfa_enabled = serializers.BooleanField(read_only=True)
    capabilities = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "email", "name", "role", "client", "timezone", "mfa_enabled",
                  "last_login", "capabilities"]
        read_only_fields = fields

    def get_capabilities(self, user) -> list[str]:
        from ..permissions import ROLE_CAPABILITIES

        return sorted(ROLE_CAPABILITIES.get(user.role, ()))


class TokenSerializer(serializers.ModelSerializer):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "scope", "created_at", "expires_at",
                  "last_used_at", "last_used_ip", "revoked_at", "is_active"]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "last_used_ip",
                            "revoked_at", "is_active"]
        extra_kwargs = {
            "scope": {"required": True},
            "expires_at": {"required": True, "allow_null": False,
                           "help_text": "Required: at most the owner's limit ahead "
                                        "(90 days unless changed)."},
        }


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(read_only=True,
                                  help_text="The raw token; shown only in this response.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]


def _as_drf(exc: Exception) -> Exception:
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc))
    return exc


@extend_schema_view(
    list=extend_schema(summary="List users"),
    create=extend_schema(summary="Create a user; the response carries a one-time password",
                         responses={201: UserCreatedSerializer}),
    destroy=extend_schema(summary="Deactivate a user (users are never deleted)"),
)
class UserViewSet(DeclaredMethodsMixin, viewsets.ModelViewSet):
    """Users of the MSP and its clients; writes go through core.accounts (audited)."""

    queryset = User.objects.select_related("client").prefetch_related("assigned_clients")
    serializer_class = UserSerializer
    search_fields = ["email", "name"]
    filterset_fields = ["role", "is_active", "client"]
    ordering_fields = ["email", "name", "last_login", "date_joined", "id"]
    ordering = ["email"]
    permissions = {"GET": "users.view", "POST": "users.manage", "PUT": "users.manage",
                   "PATCH": "users.manage", "DELETE": "users.manage"}

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return UserUpdateSerializer
        return UserSerializer

    def create(self, request, *args, **kwargs):
        serializer = UserSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            user, password = accounts.create_user(
                actor=request.user, email=data["email"], role=data["role"],
                name=data.get("name", ""), client=data.get("client"),
                assigned_clients=data.get("assigned_clients", ()),
                timezone_name=data.get("timezone", "UTC"))
        except DjangoPermissionDenied as exc:
            raise _as_drf(exc) from exc
        out = UserCreatedSerializer(user, context=self.get_serializer_context()).data
        out["one_time_password"] = password
        return Response(out, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        assigned = data.pop("assigned_clients", None)
        try:
            serializer.instance = accounts.update_user(
                actor=self.request.user, user=serializer.instance,
                assigned_clients=assigned, **data)
        except DjangoPermissionDenied as exc:
            raise _as_drf(exc) from exc

    def perform_destroy(self, instance):
        try:
            accounts.deactivate_user(actor=self.request.user, user=instance)
        except DjangoPermissionDenied as exc:
            raise _as_drf(exc) from exc

    @extend_schema(summary="Give a user a new one-time password (they must change it)",
                   request=None, responses={200: UserCreatedSerializer})
    @action(detail=True, methods=["post"], url_path="reset-password")
    def reset_password(self, request, pk=None):
        user = self.get_object()
        try:
            password = accounts.reset_password(actor=request.user, user=user)
        except DjangoPermissionDenied as exc:
            raise _as_drf(exc) from exc
        user.refresh_from_db()
        out = UserCreatedSerializer(user, context=self.get_serializer_context()).data
        out["one_time_password"] = password
        return Response(out)


class MeView(DeclaredMethodsMixin, generics.GenericAPIView):
    """The signed-in user (session or token): profile, role and capabilities."""

    serializer_class = MeSerializer
    queryset = User.objects.none()
    filter_backends: list = []
    pagination_class = None
    permissions = {"GET": "profile"}

    @extend_schema(summary="The signed-in user", responses=MeSerializer)
    def get(self, request, *args, **kwargs):
        return Response(MeSerializer(request.user).data)


@extend_schema_view(
    list=extend_schema(summary="List your API tokens"),
    create=extend_schema(summary="Create an API token; the raw token is in this response only",
                         responses={201: TokenCreatedSerializer}),
    destroy=extend_schema(summary="Revoke one of your API tokens"),
)
class TokenViewSet(DeclaredMethodsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                   mixins.CreateModelMixin, mixins.DestroyModelMixin,
                   viewsets.GenericViewSet):
    """Your own personal API tokens; the raw value appears only in the create response."""

    queryset = ApiToken.objects.all()
    serializer_class = TokenSerializer
    ordering = ["-created_at"]
    ordering_fields = ["created_at", "name", "last_used_at"]
    filterset_fields = ["scope"]
    permissions = {"GET": "profile", "POST": "profile", "DELETE": "profile"}

    def get_queryset(self):
        # Tokens belong to a person: everyone sees (and revokes) only their own.
        return ApiToken.objects.filter(user=self.request.user)

    def create(self, request, *args, **kwargs):
        if request.auth is not None:
            # A token must not mint tokens: whoever briefly holds one could keep access.
            raise exceptions.PermissionDenied(
                "API tokens are created from a signed-in session, not with a token.")
        if not recently_authenticated(request._request):
            raise exceptions.PermissionDenied(
                "Confirm your password first (Profile → API tokens → Confirm it's you); "
                "a new token needs a sign-in or confirmation in the last few minutes.")
        serializer = TokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        token, raw = accounts.create_token(actor=request.user, user=request.user,
                                           name=data["name"], scope=data["scope"],
                                           expires_at=data["expires_at"])
        out = TokenCreatedSerializer(token).data
        out["token"] = raw
        return Response(out, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        accounts.revoke_token(actor=self.request.user, token=instance)

