"""SQLAlchemy models, one module per aggregate."""

from app.models.client import Client
from app.models.key import SigningKey
from app.models.role import Role
from app.models.user import User, UserRole

__all__ = ["Client", "Role", "SigningKey", "User", "UserRole"]
