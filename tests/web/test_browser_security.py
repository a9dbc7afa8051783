"""The web page against hostile text, its headers, and accounts, in a real browser.

Playwright's async API runs on asyncio only, so these tests run on asyncio; the server is an
``anychat serve`` subprocess on each backend (see conftest). Skipped without Chromium or
Playwright, unless CI is set.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.helpers import LineClient

from .clients import enter, expect, irc_user, log, nc_user, open_page, say, status

if TYPE_CHECKING:
    from playwright.async_api import Browser

    from .conftest import ChatServer

pytestmark = pytest.mark.timeout(240)

#: Markup, script links, terminal escapes, a bell and a right-to-left override.
HOSTILE = (
    "<img src=x onerror=alert(1)> [click](javascript:alert(2)) javascript:alert(3) "
    "<a href='javascript:alert(4)'>x</a> <svg onload=window.__pwned=1> "
    "\x1b[31mred\x07 \u202egnp.exe"
)
#: Topics may not hold control characters; the markup is what matters there.
HOSTILE_TOPIC = "<img src=x onerror=alert(5)> javascript:alert(6)"


async def test_hostile_text_from_every_protocol_is_inert(
    chat_server: ChatServer, browser: Browser
) -> None:
    victim, probe = await enter(browser, chat_server.url, "victim")
    sender, sender_probe = await enter(browser, chat_server.url, "webby")
    async with (
        await nc_user(chat_server.port, "nccy") as nc,
        await irc_user(chat_server.port, "ircy") as irc,
        await LineClient.open(chat_server.port) as jsonl,
    ):
        await jsonl.send_json(type="hello", nick="jsony", ref=0)
        await jsonl.json_event("members")
        await nc.send(HOSTILE.encode() + b"\n")
        await irc.send(b"PRIVMSG #general :" + HOSTILE.encode() + b"\r\n")
        await jsonl.send_json(type="say", to="#general", text=HOSTILE, ref=1)
        await jsonl.json_event("ack")
        await say(sender, HOSTILE)
        await jsonl.send_json(type="topic", room="#general", text=HOSTILE_TOPIC, ref=2)
        await jsonl.json_event("topic")
        for nick in ("nccy", "ircy", "jsony", "webby"):
            line = log(victim).locator("li.msg", has_text=f"<{nick}>")
            await expect(line).to_contain_text("<img src=x onerror=alert(1)>")
        await expect(victim.locator("#conv-topic")).to_contain_text("<img src=x")
    for page in (victim, sender):
        # No element came from the text: no image, no script, every link http(s) only.
        assert await page.locator("img, script:not([src]), iframe, object, embed").count() == 0
        hrefs = await page.locator("a").evaluate_all("links => links.map(a => a.href)")
        assert all(href.startswith(("http://", "https://")) for href in hrefs), hrefs
        shown = await log(page).text_content() or ""
        assert "\u202e" not in shown and "\x1b" not in shown and "\x07" not in shown
        assert "\ufffdgnp.exe" in shown
        assert await page.evaluate("() => window.__pwned === undefined")
    probe.assert_clean()
    sender_probe.assert_clean()


async def test_strict_csp_and_other_headers(chat_server: ChatServer, browser: Browser) -> None:
    page, probe = await open_page(browser, chat_server.url)
    response = await page.request.get(chat_server.url)
    assert response.status == 200
    headers = response.headers
    csp = headers["content-security-policy"]
    directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
    script = directives.get("script-src", directives.get("default-src"))
    assert script is not None and "'self'" in script, csp
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, csp
    assert headers["x-content-type-options"] == "nosniff"
    assert "referrer-policy" in headers
    # The page works under that policy: no violation reported while it logs in and chats.
    await page.get_by_label("nick").fill("ada")
    await page.get_by_label("nick").press("Enter")
    await expect(status(page)).to_have_text("connected as ada")
    await say(page, "under a strict policy")
    await expect(log(page).locator("li.msg.mine .status")).to_have_attribute(
        "data-state", "confirmed"
    )
    probe.assert_clean()


async def test_register_reload_log_in_and_wrong_password(
    chat_server: ChatServer, browser: Browser
) -> None:
    page, probe = await open_page(browser, chat_server.url)
    await page.get_by_label("nick").fill("dora")
    await page.get_by_label("password").fill("correct horse battery")
    await page.get_by_role("button", name="Register").click()
    await expect(status(page)).to_have_text("connected as dora")
    await expect(page.locator("#whoami")).to_contain_text("logged in")
    stored = json.loads(await page.evaluate("() => JSON.stringify(sessionStorage)"))
    token = stored["anychat.token"]
    assert token and token not in page.url
    # A reload logs in again with the token (no first screen).
    await page.reload()
    await expect(status(page)).to_have_text("connected as dora")
    await expect(page.locator("#login-screen")).to_be_hidden()
    await expect(page.locator("#whoami")).to_contain_text("logged in")

    other, other_probe = await open_page(browser, chat_server.url)
    await other.get_by_label("nick").fill("dora")
    await other.get_by_label("password").fill("wrong password!")
    await other.get_by_role("button", name="Log in").click()
    await expect(other.locator("#login-error")).to_be_visible()
    await expect(other.locator("#login-screen")).to_be_visible()
    # A guest cannot take the account's nick.
    await other.get_by_label("nick").fill("dora")
    await other.get_by_label("nick").press("Enter")
    await expect(other.locator("#login-error")).to_be_visible()
    # The right password (Enter in the password field logs in) moves the login here.
    await other.get_by_label("nick").fill("dora")
    await other.get_by_label("password").fill("correct horse battery")
    await other.get_by_label("password").press("Enter")
    await expect(status(other)).to_have_text("connected as dora")
    await expect(status(page)).to_have_attribute("data-state", "disconnected")
    await expect(status(page)).to_contain_text("logged in from elsewhere")
    probe.assert_clean()
    other_probe.assert_clean()


async def test_own_message_pending_then_confirmed_or_failed(
    chat_server: ChatServer, browser: Browser
) -> None:
    page, probe = await enter(browser, chat_server.url, "ada")
    # Record every state each own message's status goes through.
    await page.evaluate(
        """() => {
            window.__states = [];
            new MutationObserver(records => {
                for (const record of records) {
                    if (record.type === 'attributes') {
                        window.__states.push(record.target.dataset.state);
                    }
                    for (const node of record.addedNodes) {
                        const status = node.querySelector && node.querySelector('.status');
                        if (status) window.__states.push(status.dataset.state);
                    }
                }
            }).observe(document.getElementById('log-container'), {
                subtree: true, childList: true, attributes: true,
                attributeFilter: ['data-state'],
            });
        }"""
    )
    async with await nc_user(chat_server.port, "carol") as carol:
        await say(page, "wait for it")
        await carol.line_containing(b"<ada> wait for it")
        line = log(page).locator("li.msg.mine", has_text="wait for it")
        await expect(line.locator(".status")).to_have_attribute("data-state", "confirmed")
        assert (await line.get_attribute("data-id") or "").isdigit()
        assert await page.evaluate("() => window.__states") == ["pending", "confirmed"]
    # A refused message is marked failed with the server's reason.
    await say(page, "/msg nobody-here are you there?")
    failed = log(page).locator("li.msg.failed")
    await expect(failed).to_contain_text("are you there?")
    await expect(failed.locator(".status")).to_contain_text("no such nick")
    probe.assert_clean()
