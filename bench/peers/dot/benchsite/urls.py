"""The DOT peer's routes, at the same paths as AuthGate's so the harness sends identical requests."""

from django.contrib.auth import views as auth_views
from django.urls import include, path
from oauth2_provider import views as oauth

oauth2_patterns = (
    [
        path("authorize", oauth.AuthorizationView.as_view(), name="authorize"),
        path("token", oauth.TokenView.as_view(), name="token"),
        path("revoke", oauth.RevokeTokenView.as_view(), name="revoke-token"),
        path("introspect", oauth.IntrospectTokenView.as_view(), name="introspect"),
        path("userinfo", oauth.UserInfoView.as_view(), name="user-info"),
        path("jwks", oauth.JwksInfoView.as_view(), name="jwks-info"),
        path("logout", oauth.RPInitiatedLogoutView.as_view(), name="rp-initiated-logout"),
    ],
    "oauth2_provider",
)

urlpatterns = [
    path("oauth2/", include(oauth2_patterns)),
    path(".well-known/openid-configuration", oauth.ConnectDiscoveryInfoView.as_view()),
    path("login", auth_views.LoginView.as_view(), name="login"),
]
