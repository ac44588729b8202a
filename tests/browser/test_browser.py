"""End-to-end checks in a real browser: sign-in, admin pages, HTMX swaps and polling, toasts, phone layout.

Each test saves full-page screenshots of the pages it visits to test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.async_api import Page, expect

from app.accounts import services as accounts
from app.accounts.tables import Membership
from app.audit.services import SYSTEM
from tests.browser.conftest import PHONE, page_overflow, shot, sign_in
from tests.conftest import make_member, make_tenant

pytestmark = pytest.mark.browser


async def _role(membership_id) -> str | None:
    row = await Membership.select(Membership.role).where(Membership.id == membership_id).first()
    return row["role"] if row else None


def _nav(page: Page, name: str):
    return page.locator("header.site-header").get_by_role("link", name=name, exact=True)


async def test_admin_signs_in_and_uses_the_roster_and_audit_log(page: Page, new_context, personas):
    await sign_in(page, personas.admin.email, landing="/admin")
    await expect(page.get_by_role("heading", level=1)).to_have_text(personas.acme["name"])
    await expect(_nav(page, "Dashboard")).to_have_attribute("aria-current", "page")
    await shot(page, "admin-dashboard")

    await _nav(page, "Members").click()
    await page.wait_for_url(re.compile(r"/admin/members$"))
    roster = page.locator("#roster table")
    for persona in (personas.owner, personas.admin, personas.learner):
        await expect(roster).to_contain_text(persona.email)
    await expect(roster).not_to_contain_text(personas.outsider.email)
    await expect(page.locator("#roster")).to_contain_text("3 members")
    await shot(page, "members")

    # The role <select> asks first, then posts on change (HTMX) and the row is swapped in place.
    row = page.locator(f"#member-{personas.learner.membership_id}")
    page.once("dialog", lambda dialog: dialog.accept())
    await row.get_by_role("combobox").select_option("admin")
    await expect(row).to_contain_text("is now admin")
    await expect(row.get_by_role("combobox")).to_have_value("admin")
    assert await _role(personas.learner.membership_id) == "admin"
    assert page.url.endswith("/admin/members")  # swapped, not navigated
    await shot(page, "members-role-changed")

    # Inviting posts the form over HTMX and re-renders the roster in place, with the link to pass on.
    await page.locator("details.invite > summary").click()
    invite = page.locator("form.invite-form")
    email = f"nina-{secrets.token_hex(4)}@example.test"
    await invite.get_by_label("Email").fill(email)
    await shot(page, "members-invite-form")
    await invite.get_by_role("button", name="Create invitation link").click()
    notice = page.locator("#roster .flash-success")
    await expect(notice).to_contain_text(f"Invitation created for {email} as learner.")
    link = await notice.locator(".invite-link code").inner_text()
    assert "/invitations/" in link
    await expect(page.locator("#roster .invitations-table")).to_contain_text(email)
    await expect(page.locator("#roster .roster-table")).not_to_contain_text("Invitation created")
    assert page.url.endswith("/admin/members")
    await shot(page, "members-invited")

    # The invitee opens the link in their own browser and creates an account.
    invitee = await (await new_context()).new_page()
    await invitee.goto(link)
    await expect(invitee.get_by_role("heading", level=1)).to_contain_text(personas.acme["name"])
    create = invitee.locator("form.invitation-create-account")
    await create.get_by_label("Your name").fill("Nina New")
    await create.get_by_label("Choose a password").fill("a-long-password")
    await shot(invitee, "invitation-accept")
    await create.get_by_role("button", name="Create account and join").click()
    await invitee.wait_for_url(re.compile(r"/learn$"))
    assert await Membership.count().where(Membership.tenant_id == personas.acme["id"]) == 4
    await page.reload()
    await expect(page.locator("#roster")).to_contain_text("4 members")
    await expect(page.locator("#roster table.roster-table")).to_contain_text("Nina New")

    await row.get_by_role("link").first.click()
    await page.wait_for_url(re.compile(rf"/admin/members/{personas.learner.membership_id}$"))
    await expect(page.locator(".page-head")).to_contain_text(personas.learner.email)
    await expect(page.locator(".page-head .badge")).to_have_text("admin")
    await shot(page, "member-detail")

    await _nav(page, "Audit log").click()
    await page.wait_for_url(re.compile(r"/admin/audit$"))
    audit_rows = page.locator("#audit-table tbody tr")
    login_row = audit_rows.filter(has_text="Signed in").filter(has_text=personas.admin.email)
    await expect(login_row).to_have_count(1)
    role_row = audit_rows.filter(has_text="Role changed")
    await expect(role_row).to_have_count(1)
    await shot(page, "audit-log")

    # Filtering swaps the table in place and pushes the filter into the URL.
    await page.get_by_label("Action").select_option("ROLE_CHANGED")
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url(re.compile(r"action=ROLE_CHANGED"))
    await expect(audit_rows).to_have_count(1)

    await role_row.get_by_role("link").first.click()  # the entry (its time); the second names the member
    await page.wait_for_url(re.compile(r"/admin/audit/\d+$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Role changed")
    await expect(page.locator("pre.json")).to_contain_text('"from": "learner"')
    await shot(page, "audit-entry")


async def test_dashboard_recompute_shows_stats_when_the_job_finishes(page: Page, personas):
    await sign_in(page, personas.admin.email, landing="/admin")
    await expect(page.locator("#stats .empty-state")).to_be_visible()
    await shot(page, "dashboard-no-stats")

    await page.get_by_role("button", name="Recompute").click()
    await expect(page.locator("#stats-job .badge")).to_have_text("Done", timeout=20_000)
    values = page.locator("#stats .stat-value")
    await expect(values).to_have_count(4)
    members, admins, learners, audit_events = await values.all_inner_texts()
    assert (members, admins, learners) == ("3", "2", "1")
    assert int(audit_events) > 0
    await expect(page.locator("#stats")).to_contain_text("Computed")
    await shot(page, "dashboard-stats")


async def test_a_learner_lands_on_the_learner_home(page: Page, personas):
    await sign_in(page, personas.learner.email, landing="/learn")
    await expect(page.get_by_role("heading", name="Your courses")).to_be_visible()
    await expect(page.locator(".page-head")).to_contain_text(personas.acme["name"])
    await expect(_nav(page, "Members")).to_have_count(0)
    await shot(page, "learn-home")

    response = await page.goto("/admin/members")
    assert response.status == 403
    await expect(page.locator(".error-page")).to_contain_text("This page is for workspace admins.")
    await shot(page, "error-403")


async def test_a_failed_htmx_request_shows_its_message_in_the_form(page: Page, personas):
    tenant = await make_tenant("Solo")
    owner = await make_member(tenant, "owner", "sole")
    await make_member(tenant, "learner", "pupil")
    await sign_in(page, owner.email, landing="/admin")
    await expect(page.locator("#admin-warning")).to_contain_text("Only 1 admin")
    await page.goto("/admin/members")

    row = page.locator(f"#member-{owner.membership_id}")
    select = row.get_by_role("combobox")
    page.once("dialog", lambda dialog: dialog.accept())
    await select.select_option("learner")
    # The server's message appears in the row's form (not a toast), and this form opted in to snapping
    # back to the role the server kept (data-reset-on-error).
    message = row.locator("form.role-form .form-error[role=alert]")
    await expect(message).to_contain_text("last admin")
    await expect(message).to_be_focused()
    await expect(page.locator("#toasts .toast")).to_have_count(0)
    await expect(select).to_have_value("owner")
    assert await _role(owner.membership_id) == "owner"
    await shot(page, "members-error-in-form")


async def test_error_pages_render_in_the_layout(page: Page, personas):
    response = await page.goto("/nope")
    assert response.status == 404
    await expect(page.locator(".error-code")).to_have_text("404")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    await shot(page, "error-404-anonymous")

    await sign_in(page, personas.admin.email, landing="/admin")
    response = await page.goto("/admin/members/00000000-0000-0000-0000-000000000000")
    assert response.status == 404
    await expect(page.locator(".error-page")).to_be_visible()
    await expect(_nav(page, "Members")).to_be_visible()
    await shot(page, "error-404-signed-in")


async def test_header_menus_switch_workspace_and_sign_out(page: Page, personas):
    await accounts.add_membership(personas.globex["id"], personas.admin.user_id, "learner", actor=SYSTEM)
    await sign_in(page, personas.admin.email, landing="/admin")

    switcher = page.locator("details.tenant-switcher")
    await switcher.locator("summary").click()
    globex = switcher.get_by_role("button", name=re.compile(re.escape(personas.globex["name"])))
    await expect(globex).to_be_visible()
    await shot(page, "menu-tenant-switcher")
    await globex.click()
    await page.wait_for_url(re.compile(r"/learn$"))
    await expect(page.locator(".flash-success")).to_contain_text(f"Switched to {personas.globex['name']}")
    await expect(switcher.locator("summary")).to_have_text(personas.globex["name"])
    await expect(_nav(page, "Members")).to_have_count(0)  # a learner in Globex

    user_menu = page.locator("details.user-menu")
    await user_menu.locator("summary").click()
    await expect(user_menu).to_contain_text(personas.admin.email)
    await shot(page, "menu-user")
    await user_menu.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(re.compile(r"/login$"))
    await expect(page.locator(".flash-info")).to_contain_text("You have been signed out.")
    await shot(page, "login-signed-out")


async def test_pages_fit_a_phone_screen(new_context, personas):
    await accounts.add_membership(personas.globex["id"], personas.admin.user_id, "learner", actor=SYSTEM)
    context = await new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = await context.new_page()

    await page.goto("/login")
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert await page_overflow(page) == 0
    await shot(page, "phone-login")

    await sign_in(page, personas.admin.email, landing="/admin")
    assert await page_overflow(page) == 0
    await shot(page, "phone-dashboard")

    await page.goto("/admin/members")
    await expect(page.locator("#roster table")).to_contain_text(personas.learner.email)
    assert await page_overflow(page) == 0
    await shot(page, "phone-members")

    # The header menus open inside the screen.
    menus = (("details.tenant-switcher", "phone-menu-tenant-switcher"), ("details.user-menu", "phone-menu-user"))
    for menu, name in menus:
        await page.locator(f"{menu} > summary").click()
        box = await page.locator(f"{menu} > ul").bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (menu, box)
        await shot(page, name)
        await page.locator(f"{menu} > summary").click()

    await page.goto("/admin/audit")
    await expect(page.locator("#audit-table tbody tr").first).to_be_visible()
    assert await page_overflow(page) == 0
    await shot(page, "phone-audit-log")
