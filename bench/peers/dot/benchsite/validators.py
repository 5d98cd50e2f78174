"""OIDC claims for the DOT peer: the same user claims AuthGate and oidc-provider return."""

from oauth2_provider.oauth2_validators import OAuth2Validator


class BenchValidator(OAuth2Validator):
    oidc_claim_scope = {
        **OAuth2Validator.oidc_claim_scope,
        "roles": "roles",
        "preferred_username": "profile",
    }

    def get_additional_claims(self, request):
        user = request.user
        return {
            "email": user.email,
            "email_verified": True,
            "name": user.get_full_name(),
            "given_name": user.first_name,
            "family_name": user.last_name,
            "preferred_username": user.username,
            "roles": ["ROLE_ADMIN"] if user.is_staff else [],
        }
