"""The web page in a real browser, chatting with nc and IRC users in one room.

Playwright's async API runs on asyncio only, so these tests run on asyncio; the server is an
``anychat serve`` subprocess on each backend (see conftest). Skipped without Chromium or
Playwright, unless CI is set.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers import LineClient

from .clients import (
    composer,
    enter,
    expect,
    irc_user,
    log,
    nc_user,
    next_frames,
    say,
    status,
    swipe_down,
)

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

    from .conftest import ChatServer

pytestmark = pytest.mark.timeout(240)


async def test_two_pages_nc_and_irc_chat_in_one_room(
    chat_server: ChatServer, browser: Browser, screenshot_dir: Path
) -> None:
    url = chat_server.url
    ada, ada_probe = await enter(browser, url, "ada")
    # bob is on a phone.
    bob, bob_probe = await enter(browser, url, "bob", width=390, height=844)
    async with (
        await nc_user(chat_server.port, "carol") as carol,
        await irc_user(chat_server.port, "ivan") as ivan,
    ):
        members = ada.locator("#member-list")
        for nick in ("bob", "carol", "ivan"):
            await expect(members).to_contain_text(nick)

        await say(ada, "hello from ada's browser")
        await expect(log(bob)).to_contain_text("<ada> hello from ada's browser")
        await carol.line_containing(b"<ada> hello from ada's browser")
        await ivan.line_containing(b"PRIVMSG #general :hello from ada's browser")
        mine = log(ada).locator("li.msg.mine").last
        await expect(mine.locator(".status")).to_have_attribute("data-state", "confirmed")

        await say(bob, "bob on a phone")
        await expect(log(ada)).to_contain_text("<bob> bob on a phone")
        await carol.line_containing(b"<bob> bob on a phone")

        await carol.send(b"carol here on nc\n")
        await expect(log(ada)).to_contain_text("<carol> carol here on nc")
        await expect(log(bob)).to_contain_text("<carol> carol here on nc")

        await ivan.send(b"PRIVMSG #general :ivan says hi, see https://example.org/docs.\r\n")
        await ivan.send(b"PRIVMSG #general :\x01ACTION waves\x01\r\n")
        await expect(log(ada)).to_contain_text("<ivan> ivan says hi")
        link = log(ada).get_by_role("link", name="https://example.org/docs")
        await expect(link).to_have_attribute("href", "https://example.org/docs")
        await expect(link).to_have_attribute("rel", "noopener noreferrer")
        action = log(bob).locator("li.kind-action").last
        await expect(action).to_contain_text("* ivan waves")

        await say(ada, "/topic Release day: v0.2 ships at 15:00")
        await expect(bob.locator("#conv-topic")).to_have_text("Release day: v0.2 ships at 15:00")
        await expect(log(bob)).to_contain_text("ada set the topic: Release day")

        # A mention of ada is highlighted for ada.
        await carol.send(b"ada: a question for you\n")
        await expect(log(ada).locator("li.mention")).to_contain_text("a question for you")

        # Every message appears once in each page.
        for page in (ada, bob):
            ids = (
                await log(page)
                .locator("li[data-id]")
                .evaluate_all("lines => lines.map(line => line.dataset.id)")
            )
            assert len(ids) == len(set(ids)) == 6

        # The phone's room list is a drawer behind a button.
        rooms_button = bob.get_by_role("button", name="Rooms")
        await rooms_button.click()
        await expect(bob.locator("#sidebar")).to_be_in_viewport()
        await bob.keyboard.press("Escape")
        await expect(bob.locator("#sidebar")).not_to_be_in_viewport()

        await ada.screenshot(path=str(screenshot_dir / "desktop.png"))
        await bob.screenshot(path=str(screenshot_dir / "phone.png"))
    ada_probe.assert_clean()
    bob_probe.assert_clean()


async def post_entries(writer: LineClient, count: int) -> None:
    """scribe says "entry 1" to "entry COUNT" in #general."""
    await writer.send_json(type="hello", nick="scribe", ref=0)
    await writer.json_event("members")
    for number in range(1, count + 1):
        await writer.send_json(type="say", to="#general", text=f"entry {number}", ref=number)
        await writer.json_event("ack")


async def test_history_on_entering_and_older_pages_on_scrolling_up(
    chat_server: ChatServer, browser: Browser
) -> None:
    async with await LineClient.open(chat_server.port) as writer:
        await post_entries(writer, 60)
        page, probe = await enter(browser, chat_server.url, "reader")
        # Entering the room replays its latest messages (50 by default)...
        await expect(log(page)).to_contain_text("<scribe> entry 60")
        await expect(log(page).locator("li.msg")).to_have_count(50)
        await expect(log(page)).not_to_contain_text("entry 10 ")
        # ...and scrolling to the top loads the page before them.
        await log(page).locator("li.msg").first.scroll_into_view_if_needed()
        await page.locator("#log-container").evaluate("box => { box.scrollTop = 0; }")
        await expect(log(page).locator("li.msg").first).to_contain_text("entry 1")
        await _expect_all_sixty_entries(page)
    probe.assert_clean()


async def _expect_the_latest_fifty_only(page: Page) -> None:
    """The replay is shown, every frame due has been drawn, and no older page came."""
    await expect(log(page)).to_contain_text("<scribe> entry 60")
    await next_frames(page)
    await expect(log(page).locator("li.older")).to_have_text("Load earlier messages")
    assert await log(page).locator("li.msg").count() == 50


async def _expect_all_sixty_entries(page: Page) -> None:
    """The older page came: all 60 entries, in order, and nothing before them."""
    await expect(log(page).locator("li.msg")).to_have_count(60)
    await expect(log(page).locator("li.older")).to_have_text("no earlier messages")
    texts = await log(page).locator("li.msg .text").all_inner_texts()
    assert texts == [f"entry {number}" for number in range(1, 61)]


async def test_a_replay_drawn_line_by_line_fetches_no_older_page_until_the_wheel_scrolls_up(
    chat_server: ChatServer, browser: Browser
) -> None:
    # A frame drawn between each two replayed lines, as a busy machine may: one of them shows
    # the log just past the screen, stuck to its newest line a few pixels from its top. That is
    # the page scrolling, not the person: no older page comes.
    async with await LineClient.open(chat_server.port) as writer:
        await post_entries(writer, 60)
        page, probe = await enter(browser, chat_server.url, "reader", one_message_per_frame=True)
        await _expect_the_latest_fifty_only(page)
        # The person turns the mouse wheel up to the top: the page before comes.
        await page.locator("#log-container").hover()
        await page.mouse.wheel(0, -5000)
        await _expect_all_sixty_entries(page)
    probe.assert_clean()


async def test_on_a_phone_older_pages_come_on_swiping_down_only(
    chat_server: ChatServer, browser: Browser
) -> None:
    async with await LineClient.open(chat_server.port) as writer:
        await post_entries(writer, 60)
        page, probe = await enter(
            browser,
            chat_server.url,
            "reader",
            width=390,
            height=844,
            touch=True,
            one_message_per_frame=True,
        )
        await _expect_the_latest_fifty_only(page)
        # Two swipes down, more than the log's height: it scrolls up to its top, the page before
        # comes.
        await swipe_down(page, page.locator("#log-container"))
        await swipe_down(page, page.locator("#log-container"))
        await _expect_all_sixty_entries(page)
    probe.assert_clean()


async def test_reconnect_after_the_server_restarts(
    chat_server: ChatServer, browser: Browser
) -> None:
    page, probe = await enter(browser, chat_server.url, "ada")
    async with await nc_user(chat_server.port, "carol") as carol:
        await carol.send(b"before the restart\n")
        await expect(log(page)).to_contain_text("<carol> before the restart")
        await say(page, "ada before the restart")
        await carol.line_containing(b"<ada> ada before the restart")
    await chat_server.stop()
    await expect(status(page)).to_have_attribute("data-state", "disconnected")
    await chat_server.start()
    await expect(status(page)).to_have_text("connected as ada")
    async with await nc_user(chat_server.port, "dave") as dave:
        await dave.send(b"after the restart\n")
        await expect(log(page)).to_contain_text("<dave> after the restart")
        await say(page, "ada is back")
        await dave.line_containing(b"<ada> ada is back")
    # The rejoin replayed the room's history and the catch-up asked for everything after the
    # last id seen: each message is shown exactly once.
    ids = (
        await log(page)
        .locator("li[data-id]")
        .evaluate_all("lines => lines.map(line => line.dataset.id)")
    )
    assert len(ids) == len(set(ids)) == 4
    texts = await log(page).locator("li.msg .text").all_inner_texts()
    assert texts.count("before the restart") == 1
    assert texts.count("ada before the restart") == 1
    # While the server was down the browser logged the refused connections.
    probe.assert_clean(allow="WebSocket connection to")


async def test_private_chat_by_clicking_a_nick_and_unread_counts(
    chat_server: ChatServer, browser: Browser
) -> None:
    ada, ada_probe = await enter(browser, chat_server.url, "ada")
    bob, bob_probe = await enter(browser, chat_server.url, "bob")
    await bob.locator("#member-list").get_by_role("button", name="ada").click()
    await expect(bob.locator("#conv-title")).to_have_text("ada")
    await say(bob, "psst, ada")
    await expect(bob.locator("li.msg.mine .status").last).to_have_attribute(
        "data-state", "confirmed"
    )
    # ada is looking at #general: the private chat appears with an unread count, and the title
    # counts it.
    chat = ada.locator("#chat-list").get_by_role("button", name="bob, 1 unread")
    await expect(chat).to_be_visible()
    await expect(ada).to_have_title("(1) #general – anychat")
    await chat.click()
    await expect(log(ada)).to_contain_text("<bob> psst, ada")
    await expect(ada.locator("li.new-marker")).to_be_visible()
    await expect(ada).to_have_title("bob – anychat")
    await say(ada, "hi bob")
    await expect(log(bob)).to_contain_text("<ada> hi bob")
    ada_probe.assert_clean()
    bob_probe.assert_clean()


async def test_keyboard_only_slash_commands_and_completion(
    chat_server: ChatServer, browser: Browser
) -> None:
    bob, bob_probe = await enter(browser, chat_server.url, "bob")
    ada, ada_probe = await enter(browser, chat_server.url, "ada")
    box = composer(ada)
    await expect(box).to_be_focused()
    keys = ada.keyboard
    # Tab completes a command name...
    await keys.type("/jo")
    await keys.press("Tab")
    await expect(box).to_have_value("/join ")
    await keys.type("#side")
    await keys.press("Enter")
    await expect(ada.locator("#conv-title")).to_have_text("#side")
    # ...and a nick (bob is in #general, which ada switches back to with Alt+ArrowUp).
    await keys.press("Alt+ArrowUp")
    await expect(ada.locator("#conv-title")).to_have_text("#general")
    await keys.type("/me waves at b")
    await keys.press("Tab")
    await expect(box).to_have_value("/me waves at bob ")
    await keys.press("Enter")
    action = log(bob).locator("li.kind-action").last
    await expect(action).to_contain_text("* ada waves at bob")
    await expect(action).to_have_class("msg kind-action mention")
    await keys.type("/topic release day")
    await keys.press("Enter")
    await expect(bob.locator("#conv-topic")).to_have_text("release day")
    await keys.type("/nick ada2")
    await keys.press("Enter")
    await expect(log(bob)).to_contain_text("ada is now known as ada2")
    await keys.type("/away lunch")
    await keys.press("Enter")
    await expect(log(ada)).to_contain_text("you are marked away: lunch")
    # bob sees the presence in the private chat and in the member list.
    await bob.locator("#member-list").get_by_role("button", name="ada2").click()
    await expect(bob.locator("#conv-topic")).to_have_text("away: lunch")
    await bob.keyboard.press("Alt+ArrowUp")
    away = bob.locator("#member-list").get_by_role("button", name="ada2, away: lunch")
    await expect(away).to_be_visible()
    # A long paste arrives whole, in pieces the server accepts.
    long_text = " ".join(f"word{number:03d}" for number in range(100))
    await box.fill(long_text)
    await keys.press("Enter")
    await expect(log(bob).locator("li.msg")).to_have_count(3)
    pieces = await log(bob).locator("li.msg .text").all_inner_texts()
    assert " ".join(pieces[1:]) == long_text
    ada_probe.assert_clean()
    bob_probe.assert_clean()


async def test_a_room_in_the_address_and_accessible_names_everywhere(
    chat_server: ChatServer, browser: Browser
) -> None:
    # The room in the address opens (besides the server's default room).
    page, probe = await enter(browser, chat_server.url + "#ops", "ada")
    await expect(page.locator("#conv-title")).to_have_text("#ops")
    rooms = page.locator("#room-list")
    await expect(rooms.get_by_role("button", name="#general", exact=True)).to_be_visible()
    await expect(rooms.get_by_role("button", name="#ops", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    await page.locator("#member-list").get_by_text("ada").wait_for()
    nameless = await page.evaluate(
        """() => [...document.querySelectorAll('button, input, textarea, select, a')]
            .filter(node => node.offsetParent !== null || node.closest('#chat-screen'))
            .filter(node => !(node.getAttribute('aria-label') || node.textContent.trim()
                || (node.labels && node.labels.length) || node.title))
            .map(node => node.outerHTML.slice(0, 80))"""
    )
    assert nameless == []
    probe.assert_clean()


async def test_notifications_and_unread_title_while_the_tab_is_hidden(
    chat_server: ChatServer, browser: Browser
) -> None:
    ada, ada_probe = await enter(browser, chat_server.url, "ada")
    bob, bob_probe = await enter(browser, chat_server.url, "bob")
    await expect(ada.locator("#member-list")).to_contain_text("bob")
    # The tab is hidden and notifications were allowed: record what the page asks the browser
    # to show instead of showing it.
    await ada.evaluate(
        """() => {
            window.__notes = [];
            window.Notification = class {
                static permission = 'granted';
                constructor(title, options) { window.__notes.push([title, options.body]); }
                addEventListener() {}
                close() {}
            };
            Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
            document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )
    await say(bob, "nothing for you here")
    await say(bob, "ada: look at this <b>now</b>")
    await bob.locator("#member-list").get_by_role("button", name="ada").click()
    await say(bob, "psst")
    await expect(ada).to_have_title("(3) #general – anychat")
    notes = await ada.evaluate("() => window.__notes")
    assert notes == [
        ["bob in #general", "ada: look at this <b>now</b>"],
        ["bob (private)", "psst"],
    ]
    # Back on the tab: the room is read, the marker shows where the unread messages began.
    await ada.evaluate(
        """() => {
            Object.defineProperty(document, 'hidden', { configurable: true, get: () => false });
            document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )
    await expect(ada).to_have_title("(1) #general – anychat")
    marker = log(ada).locator("li.new-marker + li.msg")
    await expect(marker).to_contain_text("nothing for you here")
    ada_probe.assert_clean()
    bob_probe.assert_clean()
