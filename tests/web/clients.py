"""The other people in the browser tests' room: a person on nc (plain text) and an IRC client,
both raw sockets speaking their protocol by hand, and a page driven by Playwright."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, overload

from tests.helpers import LineClient

if TYPE_CHECKING:
    from playwright.async_api import Browser, Dialog, Locator, Page
    from playwright.async_api._generated import LocatorAssertions, PageAssertions

#: How long a page may take to show what a test waits for (Playwright polls the DOM until it
#: matches): generous, because the machine running the tests may be busy.
WAIT_MS = 20_000


@overload
def expect(target: Page) -> PageAssertions: ...
@overload
def expect(target: Locator) -> LocatorAssertions: ...
def expect(target: Page | Locator) -> PageAssertions | LocatorAssertions:
    """Playwright's ``expect``, imported late so that a machine without Playwright collects these
    modules and skips them (see conftest) instead of failing to import them."""
    from playwright.async_api import expect as playwright_expect

    playwright_expect.set_options(timeout=WAIT_MS)
    return playwright_expect(target)


async def nc_user(port: int, nick: str) -> LineClient:
    """A person on nc: greeted after a moment of silence, in #general, renamed to ``nick``."""
    client = await LineClient.open(port)
    await client.line_containing(b"Welcome to anychat", timeout=15)
    await client.send(f"/nick {nick}\n".encode())
    await client.line_containing(f"is now known as {nick}".encode(), timeout=15)
    return client


async def irc_user(port: int, nick: str, room: str = "#general") -> LineClient:
    """An IRC client registered as ``nick`` and joined to ``room`` (names list received)."""
    client = await LineClient.open(port)
    await client.send(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
    await client.line_containing(b" 001 ", timeout=15)
    await client.send(f"JOIN {room}\r\n".encode())
    await client.line_containing(b" 366 ", timeout=15)
    return client


@dataclass
class Probe:
    """What a page did that it must not: fire a dialog, throw, break the CSP."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")

    def assert_clean(self, *, allow: str | None = None) -> None:
        """No dialog, no error; ``allow``: errors containing this text were expected."""
        assert self.dialogs == []
        assert [error for error in self.errors if allow is None or allow not in error] == []


#: The page as on a busy machine, made certain: each WebSocket message it receives is handed to
#: it in an animation frame of its own, so the browser renders, and fires the scroll events
#: the page caused, between any two of them (a loaded machine may or may not do so).
ONE_MESSAGE_PER_FRAME = """
const listen = WebSocket.prototype.addEventListener;
WebSocket.prototype.addEventListener = function (type, listener, options) {
  if (type !== "message") return listen.call(this, type, listener, options);
  const queue = [];
  const next = () => {
    listener.call(this, queue.shift());
    if (queue.length) requestAnimationFrame(next);
  };
  const paced = (event) => {
    queue.push(event);
    if (queue.length === 1) requestAnimationFrame(next);
  };
  return listen.call(this, type, paced, options);
};
"""


async def open_page(
    browser: Browser,
    url: str,
    *,
    width: int = 1280,
    height: int = 800,
    touch: bool = False,
    one_message_per_frame: bool = False,
) -> tuple[Page, Probe]:
    """A page at ``url``; ``touch``: a phone's touch screen; ``one_message_per_frame``: see
    ONE_MESSAGE_PER_FRAME."""
    context = await browser.new_context(
        viewport={"width": width, "height": height}, has_touch=touch, is_mobile=touch
    )
    if one_message_per_frame:
        await context.add_init_script(ONE_MESSAGE_PER_FRAME)
    page = await context.new_page()
    probe = Probe()

    async def dismiss(dialog: Dialog) -> None:
        probe.on_dialog(dialog)
        await dialog.dismiss()

    page.on("dialog", dismiss)
    page.on("pageerror", lambda error: probe.errors.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            probe.errors.append(f"console {message.type}: {message.text}")
            if message.type == "error"
            else None
        ),
    )
    await page.goto(url)
    return page, probe


async def enter(
    browser: Browser,
    url: str,
    nick: str,
    *,
    width: int = 1280,
    height: int = 800,
    touch: bool = False,
    one_message_per_frame: bool = False,
) -> tuple[Page, Probe]:
    """A page where ``nick`` entered as a guest (typed the nick, pressed Enter); the keywords
    are open_page's."""
    page, probe = await open_page(
        browser,
        url,
        width=width,
        height=height,
        touch=touch,
        one_message_per_frame=one_message_per_frame,
    )
    await page.get_by_label("nick").fill(nick)
    await page.get_by_label("nick").press("Enter")
    await expect(status(page)).to_have_text(f"connected as {nick}")
    return page, probe


def status(page: Page) -> Locator:
    return page.locator("#status")


def log(page: Page) -> Locator:
    """The conversation on screen."""
    return page.locator(".log:not([hidden])")


def composer(page: Page) -> Locator:
    return page.get_by_role("textbox", name="message")


async def next_frames(page: Page, count: int = 2) -> None:
    """Wait until the page has rendered ``count`` more frames (and so fired the scroll events
    pending before the first)."""
    await page.evaluate(
        """count => new Promise(resolve => {
            const step = left => (left ? requestAnimationFrame(() => step(left - 1)) : resolve());
            step(count);
        })""",
        count,
    )


async def swipe_down(page: Page, target: Locator) -> None:
    """A finger on a touch screen drags ``target`` down nearly its whole height (scrolling it
    towards its top), in small moves as a real swipe arrives."""
    box = await target.bounding_box()
    assert box is not None
    x = box["x"] + box["width"] / 2
    start = box["y"] + box["height"] * 0.1
    end = box["y"] + box["height"] * 0.9
    session = await page.context.new_cdp_session(page)
    steps = 30
    await session.send(
        "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": start}]}
    )
    for step in range(1, steps + 1):
        y = start + (end - start) * step / steps
        await session.send(
            "Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]}
        )
    await session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    await session.detach()


async def say(page: Page, text: str) -> None:
    box = composer(page)
    await box.fill(text)
    await box.press("Enter")
