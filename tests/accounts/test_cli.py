
from app.accounts.tables import Membership, Tenant, User
from app.authoring.tables import ContentItem, Syllabus
from app.billing.tables import Product
from app.demo import DEMO_BRIEF, DEMO_USERS, PAID_BRIEF, seed_demo
from app.player.tables import Enrollment
from tests.conftest import run_cli


async def test_it_creates_the_first_admin_of_a_new_workspace_as_owner():
    result = run_cli({}, "create-admin", "--email", "Founder@Startup.test", "--name", "Fay Founder", "--tenant",
                  "startup-cli", "--tenant-name", "Startup", "--password", "a-long-password")
    assert result.returncode == 0, result.stderr
    assert "founder@startup.test" in result.stdout.lower() and "owner" in result.stdout
    tenant = await Tenant.select().where(Tenant.slug == "startup-cli").first()
    user = await User.select().where(User.email == "founder@startup.test").first()
    membership = await Membership.select().where(
        (Membership.tenant_id == tenant["id"]) & (Membership.user_id == user["id"])).first()
    assert tenant["name"] == "Startup" and membership["role"] == "owner"
    again = run_cli({}, "create-admin", "--email", "second@startup.test", "--name", "Sam", "--tenant", "startup-cli",
                 "--password", "a-long-password")
    assert again.returncode == 0 and "admin of workspace startup-cli" in again.stdout
    refused = run_cli({}, "create-admin", "--email", "third@startup.test", "--name", "T", "--tenant", "startup-cli",
                   "--password", "short")
    assert refused.returncode == 1 and "at least 8 characters" in refused.stderr


async def test_it_seeds_demo_data_once_with_a_finished_course():
    first = await seed_demo()
    second = await seed_demo()
    assert (first, second) == (True, False)
    assert await Tenant.count().where(Tenant.slug.is_in(["demo", "northwind"])) == 2
    assert await User.count().where(User.email.is_in([u[0] for u in DEMO_USERS])) == len(DEMO_USERS)
    demo = await Tenant.select(Tenant.id).where(Tenant.slug == "demo").first()
    syllabi = await Syllabus.select().where(Syllabus.tenant_id == demo["id"])
    assert len(syllabi) == 2  # the free course and the paid one
    for syllabus in syllabi:
        assert syllabus["status"] == "APPROVED"
        items = await ContentItem.select(ContentItem.kind, ContentItem.status).where(
            ContentItem.syllabus_id == syllabus["id"])
        assert {i["status"] for i in items} == {"APPROVED"}
        assert {i["kind"] for i in items} == {"LESSON", "QUIZ", "PROJECT"}
    [free] = [s for s in syllabi if DEMO_BRIEF["title"] in s["content"]]
    [paid] = [s for s in syllabi if PAID_BRIEF["title"] in s["content"]]
    learner = await User.select(User.id).where(User.email == DEMO_USERS[2][0]).first()
    enrolled = await Enrollment.select(Enrollment.syllabus_id).where(Enrollment.user_id == learner["id"])
    assert [e["syllabus_id"] for e in enrolled] == [free["id"]]
    [product] = await Product.select().where(Product.tenant_id == demo["id"])
    assert (product["syllabus_id"], product["price_minor"], product["currency"], product["active"]) == (
        paid["id"], 4900, "EUR", True)


def test_it_reports_migrations_as_applied():
    result = run_cli({}, "migrate")
    assert result.returncode == 0, result.stderr
    assert "No migrations pending." in result.stdout
