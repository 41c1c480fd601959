"""A person using the web view over HTTP (for tests, the demo and benchmarks)."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Callable
from typing import Any

import aiohttp
import pyotp


def form_field(page: str, name: str) -> str:
    """The value of a hidden form field on a page."""
    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', page)
    if not found:
        raise AssertionError(f"no {name!r} field on the page")
    return html.unescape(found.group(1))


class WebUser:
    """A browser without a screen: keeps cookies, sends forms with the page's CSRF token."""

    def __init__(self, base_url: str, clock: Callable[[], dt.datetime]) -> None:
        self.base_url = base_url
        self._clock = clock
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.secret: str | None = None
        self.last_code: str | None = None
        self.last_page = ""
        self.last_url = ""

    async def close(self) -> None:
        await self.http.close()

    async def __aenter__(self) -> WebUser:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def _url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base_url}{path}"

    async def get(self, path: str, **kwargs: Any) -> tuple[int, str]:
        async with self.http.get(self._url(path), **kwargs) as response:
            self.last_page, self.last_url = await response.text(), str(response.url)
            return response.status, self.last_page

    async def post(
        self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kwargs: Any
    ) -> tuple[int, str]:
        data = dict(data or {})
        if csrf and "csrf" not in data:
            data["csrf"] = form_field(self.last_page, "csrf")
        async with self.http.post(self._url(path), data=data, **kwargs) as response:
            self.last_page, self.last_url = await response.text(), str(response.url)
            return response.status, self.last_page

    async def upload(
        self,
        path: str,
        name: str,
        content: bytes,
        *,
        csrf: str | None = None,
        fields: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """Send a file as the incident page's file form does (`fields` before it)."""
        return await self.send_files(path, [("file", name, content)], fields, csrf=csrf)

    async def send_files(
        self,
        path: str,
        files: list[tuple[str, str, bytes]],
        fields: dict[str, str] | None = None,
        *,
        csrf: str | None = None,
    ) -> tuple[int, str]:
        """Send a multipart form as a browser does: the CSRF token first, then `fields`,
        then each file as (field, file name, content)."""
        form = aiohttp.FormData(quote_fields=False)  # as browsers send names
        form.add_field("csrf", csrf if csrf is not None else form_field(self.last_page, "csrf"))
        for name, value in (fields or {}).items():
            form.add_field(name, value)
        for field, name, content in files:
            form.add_field(field, content, filename=name, content_type="application/octet-stream")
        async with self.http.post(self._url(path), data=form) as response:
            self.last_page, self.last_url = await response.text(), str(response.url)
            return response.status, self.last_page

    def code(self) -> str:
        """The authenticator's current code, by the server's clock."""
        assert self.secret is not None, "not enrolled"
        return pyotp.TOTP(self.secret).at(self._clock())

    async def use_login_link(self, link: str) -> tuple[int, str]:
        """Open a one-time link and press Continue."""
        status, page = await self.get(link)
        if status != 200:
            return status, page
        return await self.post(link, {"pre": form_field(page, "pre")}, csrf=False)

    async def pass_totp(self, secret: str | None = None) -> tuple[int, str]:
        """On the code page: enrol (reading the key off the page) or enter the code."""
        found = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', self.last_page)
        if found:
            self.secret = found.group(1).replace(" ", "")
        elif secret:
            self.secret = secret
        self.last_code = self.code()
        return await self.post("/totp", {"code": self.last_code})
