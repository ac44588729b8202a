"""LLM output is data: hostile text in generated content renders inert."""

from html.parser import HTMLParser

import pytest

from app.authoring.render import markdown_to_html
from app.authoring.tables import ContentItem
from tests.authoring.helpers import generated_content

CORPUS = [
    "<script>alert('x')</script>",
    "<img src=x onerror=alert(1)>",
    "<a href=\"javascript:alert(1)\">click</a>",
    "[click](javascript:alert(1))",
    "<div hx-get=\"/admin/members\" hx-trigger=\"load\">x</div>",
    "<div data-hx-post=\"/logout\">x</div>",
    "<iframe src=\"https://evil.example\"></iframe>",
    "<form action=\"/logout\" method=\"post\"><button>go</button></form>",
    "<p style=\"position:fixed\">x</p>",
    "![x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "{{ config }} {% print(1) %}",
]
SAFE_TAGS = {"p", "br", "hr", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "h3", "h4", "h5", "h6",
             "a", "table", "thead", "tbody", "tr", "th", "td"}


class ElementCollector(HTMLParser):
    """The real elements and attributes of an HTML fragment (escaped text does not count)."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict]]:
    collector = ElementCollector()
    collector.feed(html)
    return collector.elements


@pytest.mark.parametrize("payload", CORPUS)
def test_it_neutralises_hostile_markup(payload):
    html = str(markdown_to_html(f"Intro {payload} outro"))
    for tag, attrs in elements(html):
        assert tag in SAFE_TAGS, html
        for name, value in attrs.items():
            assert name in {"href", "title", "rel", "align"}, html
            if name == "href":
                assert value.startswith(("https://", "http://", "mailto:")), html


def test_it_keeps_harmless_formatting():
    html = str(markdown_to_html("**bold** `code` [docs](https://example.com)\n\n- one\n- two"))
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html and "<li>one</li>" in html
    assert 'href="https://example.com"' in html and 'rel="noopener noreferrer nofollow"' in html


async def test_it_renders_hostile_generated_text_inert_on_review_pages(client, personas):
    await client.login(personas.admin.email)
    # The mock writes the course title into lessons, quizzes and projects: a hostile title reaches every page.
    title = "Sec <img src=x onerror=alert(1)> <script>alert(2)</script> {{ 7*7 }} <div hx-get=/logout>x</div>"
    syllabus, _run = await generated_content(client, title=title)
    pages = [await client.get(f"/admin/syllabi/{syllabus['id']}")]
    for item in await ContentItem.select(ContentItem.id).where(ContentItem.syllabus_id == syllabus["id"]).limit(3):
        pages.append(await client.get(f"/admin/items/{item['id']}"))
    for page in pages:
        assert page.status_code == 200
        found = elements(page.text)
        assert not [tag for tag, _ in found if tag in ("img", "iframe")]
        assert [a.get("src") for tag, a in found if tag == "script"] == ["/static/vendor/htmx.min.js",
                                                                         "/static/app.js", "/static/analytics.js"]
        assert not [a for _, a in found if any(name.startswith("on") for name in a)]
        assert not [a for _, a in found if a.get("hx-get") == "/logout"]
        assert "&lt;img src=x onerror=alert(1)&gt;" in page.text  # shown as text
        assert "{{ 7*7 }}" in page.text  # never evaluated as a template
