"""A refused page is a styled page in the product's shell, saying why and what to do (issue
11), not a bare line of text."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_a_refused_page_is_styled_and_explains(as_user, tech_a):
    response = as_user(tech_a).get("/admin/audit/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "<h1>Not allowed</h1>" in html and 'id="sidenav"' in html
    assert "You do not have permission to see this page." in html
    assert "ask an administrator" in html
    refused = as_user(tech_a).get("/clients/new/")
    assert refused.status_code == 403
    assert "Only roles that see every client can add clients." in refused.content.decode()
