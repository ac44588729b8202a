"""The favicon (issue 9, item 9): pages link /static/favicon.svg, and /favicon.ico (which browsers ask for on
their own) redirects there instead of answering 404."""


async def test_it_links_and_serves_the_favicon(client):
    login = await client.get("/login")
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in login.text
    icon = await client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text.startswith("<svg")


async def test_it_redirects_favicon_ico_to_the_svg_for_anyone(client):
    response = await client.get("/favicon.ico")  # signed out: no session needed
    assert response.status_code == 301 and response.headers["location"] == "/static/favicon.svg"
