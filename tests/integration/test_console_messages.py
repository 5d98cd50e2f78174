"""What the console says about a refused field: one sentence, one full stop, next to the field."""

import html
import re

import pytest

from tests.integration.helpers import post, text


@pytest.fixture
def admin(shop_admin):
    return shop_admin


def field_errors(response) -> list[str]:
    """The texts shown under the form's fields."""
    shown = re.findall(r'class="field-error">(.*?)</', text(response), re.S)
    return [html.unescape(" ".join(message.split())) for message in shown]


def test_an_email_without_an_at_sign_is_one_sentence(admin):
    data = {"username": "bob", "email": "bob", "first_name": "Bob", "last_name": "", "password": "a long password"}
    response = post(admin, "/admin/clients/shop/users/new", data)
    assert response.status_code == 422
    assert field_errors(response) == ["Email is not a valid address: An email address must have an @-sign."]
    assert ".." not in text(response)


def test_a_role_differing_only_in_case_is_refused_next_to_its_name(admin):
    assert post(admin, "/admin/clients/shop/roles", {"name": "ROLE_ADMIN", "description": ""}).status_code == 303
    response = post(admin, "/admin/clients/shop/roles", {"name": "role_admin", "description": ""})
    assert response.status_code == 422
    assert field_errors(response) == [
        "Client 'shop' already has a role 'ROLE_ADMIN'; role names are the same whatever their case."
    ]
