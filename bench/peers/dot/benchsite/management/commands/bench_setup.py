"""Create the benchmark's clients (Applications) and user from the shared clients.json."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from oauth2_provider.models import get_application_model


class Command(BaseCommand):
    help = "Create the bench clients and user (idempotent)."

    def handle(self, *args, **options):
        Application = get_application_model()
        for client_id, c in settings.SHARED["clients"].items():
            code_flow = "authorization_code" in c["grant_types"]
            Application.objects.update_or_create(
                client_id=client_id,
                defaults={
                    "name": client_id,
                    "client_type": Application.CLIENT_CONFIDENTIAL,
                    "authorization_grant_type": (
                        Application.GRANT_AUTHORIZATION_CODE if code_flow else Application.GRANT_CLIENT_CREDENTIALS
                    ),
                    "redirect_uris": " ".join(c.get("redirect_uris", [])),
                    "client_secret": c["secret"],  # hashed on save with CLIENT_SECRET_HASHER
                    "hash_client_secret": True,
                    "skip_authorization": True,  # consent granted, no screen (AuthGate --no-require-consent)
                    "algorithm": Application.RS256_ALGORITHM if code_flow else Application.NO_ALGORITHM,
                },
            )
        user = settings.SHARED["user"]
        User = get_user_model()
        u, _ = User.objects.get_or_create(username=user["username"])
        u.email, u.first_name, u.last_name = user["email"], user["first_name"], user["last_name"]
        u.is_staff = True  # stands for holding ROLE_ADMIN in the claims
        u.set_password(user["password"])  # bcrypt at DOT_BCRYPT_ROUNDS
        u.save()
        self.stdout.write(
            f"{Application.objects.count()} clients, user {u.username}; secret hash "
            f"{Application.objects.get(client_id='bench-cc').client_secret.split('$')[0]}"
        )
