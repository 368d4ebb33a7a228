"""Who may see the dashboard, and what every response tells the browser.

Users sign in with HTTP Basic: either any name and the shared INNFLOW_DASHBOARD_TOKEN as
password, or their own tracking-server account (checked against the server; see
workflows.dashboard). The check is a plain ``(user, password) -> bool`` so the app can be
tested without a server.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable

Check = Callable[[str, str], bool]

REALM = 'Basic realm="innflow dashboard", charset="UTF-8"'


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) from an ``Authorization: Basic`` header; None for anything else
    (absent, another scheme, bad base64, not UTF-8, no colon): all of it is a 401, never a 500.
    """
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip().encode("ascii"), validate=True).decode("utf-8")
    except (UnicodeError, binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def token_check(token: str) -> Check:
    """Any user name, and ``token`` as the password (compared in constant time)."""
    expected = hashlib.sha256(token.encode()).digest()

    def check(_user: str, password: str) -> bool:
        given = hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest()
        return hmac.compare_digest(given, expected)

    return check


def content_security_policy(styles: tuple[str, ...]) -> str:
    """Nothing from anywhere, but the page's own <style> blocks (by hash) and its inline
    SVG charts as data: images; never framed, never a form or a base URL.
    """
    hashes = " ".join(f"'sha256-{_digest(style)}'" for style in styles)
    return (
        f"default-src 'none'; style-src {hashes}; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _digest(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode("ascii")


def security_headers(styles: tuple[str, ...]) -> dict[str, str]:
    """The headers on every response, including the 401 and the 503."""
    return {
        "Content-Security-Policy": content_security_policy(styles),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
