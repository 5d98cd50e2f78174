"""Console signing keys: states, rotation without breaking relying parties, and the emergency switch."""

import re

import pytest

from app.services import keys as key_service
from tests.integration.helpers import post, set_up_console, sign_in, text


@pytest.fixture
def admin(app, runner, client):
    set_up_console(app, runner)
    sign_in(client)
    return client


def rows(response) -> list[str]:
    """The keys table's rows, as the HTML of each."""
    body = text(response).split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr.*?</tr>", body, re.S)


def states(response) -> list[str]:
    return [re.search(r'<span class="badge[^"]*">(\w+)</span>', row).group(1) for row in rows(response)]


def cells(row: str) -> list[str]:
    """The text of each cell of a row, tags left out."""
    return [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in re.findall(r"<td.*?</td>", row, re.S)]


def test_keys_page_lists_each_key_with_its_state(admin):
    page = admin.get("/admin/keys")
    assert page.status_code == 200
    assert sorted(states(page)) == ["active", "active", "active"]
    for key in key_service.list_keys():
        assert key.kid[:16] in text(page)
    assert "Only if a key leaked" in text(page)


def test_rotate_publishes_next_keys_and_refuses_a_second_rotation(admin):
    response = post(admin, "/admin/keys", {"alg": ""})
    assert response.status_code == 303
    page = admin.get("/admin/keys")
    assert sorted(states(page)) == ["active"] * 3 + ["next"] * 3
    assert "is published now and starts signing once caches have it" in text(page)
    again = post(admin, "/admin/keys", {"alg": "RS256"})
    assert again.status_code == 422
    assert "rotation is already pending" in text(again)
    assert re.search(r'field has-error[^>]*>\s*<label for="alg"', text(again))


def test_rotate_now_switches_at_once_and_keeps_the_old_key_published(admin):
    response = post(admin, "/admin/keys", {"alg": "ES256", "now": "y", "confirm": "switch"})
    assert response.status_code == 303
    by_state = {}
    for key in key_service.list_keys():
        by_state.setdefault((key.alg, key_service.state_of(key)), []).append(key)
    assert len(by_state[("ES256", "active")]) == 1 and len(by_state[("ES256", "retired")]) == 1
    assert ("RS256", "next") not in by_state
    assert "signs from now on" in text(admin.get("/admin/keys"))


def test_an_unknown_algorithm_is_refused(admin):
    response = post(admin, "/admin/keys", {"alg": "HS256"})
    assert response.status_code == 422 and "Not a valid choice" in text(response)


def test_revoke_asks_for_the_kid_and_then_takes_the_key_out(admin):
    key_service.rotate("ES256", immediately=True)
    retired = next(k for k in key_service.list_keys() if k.alg == "ES256" and key_service.state_of(k) == "retired")
    page = admin.get(f"/admin/keys/{retired.kid}/revoke")
    assert page.status_code == 200 and "every token it signed stops working" in text(page)
    wrong = post(admin, f"/admin/keys/{retired.kid}/revoke", {"confirm": "nope"})
    assert wrong.status_code == 422 and f"Type {retired.kid} to confirm" in text(wrong)
    assert key_service.keyring().by_kid(retired.kid) is not None
    done = post(admin, f"/admin/keys/{retired.kid}/revoke", {"confirm": retired.kid})
    assert done.status_code == 303
    assert key_service.keyring().by_kid(retired.kid) is None
    assert "is revoked" in text(admin.get("/admin/keys"))


def test_revoking_the_signing_key_needs_a_replacement(admin):
    active = key_service.keyring().signing_key("RS256")
    refused = post(admin, f"/admin/keys/{active.kid}/revoke", {"confirm": active.kid})
    assert refused.status_code == 422 and "replacement" in text(refused)
    assert key_service.keyring().signing_key("RS256").kid == active.kid
    done = post(admin, f"/admin/keys/{active.kid}/revoke", {"confirm": active.kid, "replace": "y"})
    assert done.status_code == 303
    assert key_service.keyring().signing_key("RS256").kid != active.kid
    assert key_service.keyring().by_kid(active.kid) is None


def test_revoking_an_unknown_key_is_404(admin):
    assert admin.get("/admin/keys/no-such-kid/revoke").status_code == 404


def test_the_emergency_switch_asks_for_the_word_and_changes_nothing_without_it(admin):
    before = sorted((key.kid, key_service.state_of(key)) for key in key_service.list_keys())
    assert "Type switch to confirm" in text(admin.get("/admin/keys"))
    for typed in (None, "", "yes", "ES256"):
        data = {"alg": "ES256", "now": "y"} | ({} if typed is None else {"confirm": typed})
        refused = post(admin, "/admin/keys", data)
        assert refused.status_code == 422
        # The error is next to the field, which is shown even before the box is ticked again.
        assert re.search(
            r'<div class="field has-error switch-confirm">\s*<label for="confirm">Type switch to confirm</label>.*?'
            r"Type switch to switch at once; nothing was changed\.",
            text(refused),
            re.S,
        )
        assert sorted((key.kid, key_service.state_of(key)) for key in key_service.list_keys()) == before
    done = post(admin, "/admin/keys", {"alg": "ES256", "now": "y", "confirm": " Switch "})
    assert done.status_code == 303
    assert "signs from now on" in text(admin.get("/admin/keys"))


def test_a_planned_retirement_is_not_shown_as_done(admin):
    """After a rotation the active key retires later: its row says when, and its Retired cell stays empty."""
    key_service.rotate("RS256")
    key_service.rotate("ES256", immediately=True)
    by_kid = {key.kid[:16]: key for key in key_service.list_keys()}
    seen = set()
    for row in rows(admin.get("/admin/keys")):
        kid, alg, state, signs_from, retired, _revoke = cells(row)
        key = by_kid[kid.rstrip("…")]
        assert signs_from == key.activates_at.strftime("%Y-%m-%d %H:%M UTC")
        if alg == "RS256" and state.startswith("active"):
            assert state == f"active retires {key.retired_at:%Y-%m-%d %H:%M} UTC" and retired == "—"
        elif state == "retired":
            assert retired == f"{key.retired_at:%Y-%m-%d %H:%M} UTC"
        else:
            assert state in ("active", "next") and retired == "—"
        seen.add((alg, state.split()[0]))
    assert {("RS256", "next"), ("RS256", "active"), ("ES256", "retired"), ("ES256", "active")} <= seen
