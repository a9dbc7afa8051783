"""IRC channel operators through the real server: numerics byte by byte, with raw sockets."""

from __future__ import annotations

import anyio
import pytest

import anychat
from anychat import model as m

from .test_irc_server import Raw, raw

pytestmark = pytest.mark.timeout(30)


async def settle(peer: Raw) -> None:
    """A PING round trip: every reply to what was sent before it has arrived by its PONG."""
    await peer.send("PING :settle")
    await peer.until("PONG anychat settle")


async def lines_until_pong(peer: Raw) -> list[str]:
    await peer.send("PING :mark")
    out: list[str] = []
    with anyio.fail_after(5):
        while True:
            line = await peer.line()
            if line.endswith("PONG anychat mark"):
                return out
            out.append(line)


async def test_user_data_shows_in_hostmasks_whois_and_who(server: anychat.Server) -> None:
    async with raw(server.port) as ada, raw(server.port, "bob") as bob:
        await ada.send("NICK ada", "USER adal 0 * :Ada Lovelace")
        await ada.until(" 001 ada ")
        await ada.send("JOIN #a")
        await ada.until("366 ada #a")
        await bob.send("JOIN #a")
        assert await ada.until(" JOIN ") == ":bob!~bob@anychat JOIN #a"
        await ada.send("PRIVMSG #a :hi")
        assert await bob.until("PRIVMSG") == ":ada!~adal@anychat PRIVMSG #a :hi"
        await bob.send("WHOIS ada", "WHO #a")
        assert await bob.until(" 311 ") == ":anychat 311 bob ada ~adal anychat * :Ada Lovelace"
        assert await bob.until(" 319 ") == ":anychat 319 bob ada :@#a"
        assert await bob.until(" 352 ") == (
            ":anychat 352 bob #a ~adal anychat anychat ada H@ :0 Ada Lovelace"
        )


async def test_user_with_an_empty_realname_is_461_and_does_not_register(
    server: anychat.Server,
) -> None:
    async with raw(server.port) as peer:
        await peer.send("NICK ada", "USER u * * :")
        assert await peer.line() == ":anychat 461 * USER :Not enough parameters"
        await peer.send("USER u * * :Ada")
        await peer.until(" 001 ada ")


async def test_lusers_after_registration_and_on_request(server: anychat.Server) -> None:
    async with raw(server.port) as ada, raw(server.port) as waiting:
        await waiting.send("NICK half")  # connected, never registers
        await ada.send("NICK ada", "USER a 0 * :A")
        welcome = []
        with anyio.fail_after(5):
            while not (line := await ada.line()).split()[1] == "422":
                welcome.append(line.split()[1])
        assert welcome[6:] == ["251", "252", "253", "254", "255", "265", "266"]
        await ada.send("JOIN #a", "LUSERS")
        assert (
            await ada.until(" 251 ")
            == ":anychat 251 ada :There are 1 users and 0 invisible on 1 servers"
        )
        assert await ada.line() == ":anychat 252 ada 0 :operator(s) online"
        assert await ada.line() == ":anychat 253 ada 1 :unknown connection(s)"
        assert await ada.line() == ":anychat 254 ada 1 :channels formed"


async def test_names_prefixes_follow_multi_prefix_and_userhost_in_names(
    server: anychat.Server,
) -> None:
    async with raw(server.port, "ada") as ada, raw(server.port) as bob:
        await bob.send("CAP LS 302", "NICK bob", "USER bob 0 * :B")
        assert "multi-prefix" in (await bob.until("CAP * LS")).split()
        await bob.send("CAP REQ :multi-prefix userhost-in-names", "CAP END")
        assert await bob.until("ACK") == ":anychat CAP * ACK :multi-prefix userhost-in-names"
        await bob.until(" 001 bob ")
        await ada.send("JOIN #a")
        await ada.until("366 ada #a")
        await bob.send("JOIN #a")
        await bob.until("366 bob #a")
        await ada.until(" JOIN #a")
        await ada.send("MODE #a +v ada")
        await ada.until("MODE #a +v ada")
        await ada.send("NAMES #a")
        assert await ada.until(" 353 ") == ":anychat 353 ada = #a :@ada bob"
        await bob.send("NAMES #a")
        assert (
            await bob.until(" 353 ") == ":anychat 353 bob = #a :@+ada!~ada@anychat bob!~bob@anychat"
        )


async def test_channel_modes_query_and_change(server: anychat.Server) -> None:
    async with raw(server.port, "ada") as ada, raw(server.port, "bob") as bob:
        await ada.send("JOIN #a")
        await ada.until("366 ada #a")
        await bob.send("JOIN #a")
        await bob.until("366 bob #a")
        await ada.send("MODE #a")
        assert await ada.until(" 324 ") == ":anychat 324 ada #a +nt"
        assert (await ada.line()).startswith(":anychat 329 ada #a ")
        await ada.send("MODE #a +ov-t+kl bob bob sesame 10")
        expected = ":ada!~ada@anychat MODE #a +ov-t+kl bob bob sesame 10"
        assert await ada.until(" MODE ") == expected
        assert await bob.until(" MODE ") == expected
        await bob.send("MODE #a")
        assert await bob.until(" 324 ") == ":anychat 324 bob #a +kln sesame 10"
        await bob.send("MODE #a -o ada")  # bob is an operator now
        assert await ada.until(" MODE ") == ":bob!~bob@anychat MODE #a -o ada"


async def test_each_mode_refusal_comes_exactly_once(server: anychat.Server) -> None:
    async with raw(server.port, "ada") as ada, raw(server.port, "bob") as bob:
        await ada.send("JOIN #a")
        await ada.until("366 ada #a")
        await bob.send("JOIN #a")
        await bob.until("366 bob #a")
        await ada.until(" JOIN #a")
        await bob.send("MODE #a +mi")
        assert await lines_until_pong(bob) == [":anychat 482 bob #a :You're not channel operator"]
        await ada.send(
            "MODE #nowhere +m",
            "MODE #a +o nobody",
            "MODE #a +o",
            "MODE #a +y",
            "MODE #a +l lots",
        )
        assert await lines_until_pong(ada) == [
            ":anychat 403 ada #nowhere :No such channel",
            ":anychat 401 ada nobody :No such nick/channel",
            ":anychat 461 ada MODE :Not enough parameters",
            ":anychat 472 ada y :is unknown mode char to me",
            ":anychat 696 ada #a l * :a member limit is a positive number",
        ]
        async with raw(server.port, "cy") as cy:
            await cy.until(" 422 ")
            await ada.send("MODE #a +v cy")
            assert await lines_until_pong(ada) == [
                ":anychat 441 ada cy #a :They aren't on that channel"
            ]
            await cy.send("MODE #a +m")
            assert await lines_until_pong(cy) == [":anychat 442 cy #a :You're not on that channel"]


async def test_joining_against_invite_key_limit_and_ban(server: anychat.Server) -> None:
    async with (
        raw(server.port, "ada") as ada,
        raw(server.port, "bob") as bob,
        raw(server.port, "cy") as cy,
    ):
        await ada.send("JOIN #a", "MODE #a +i")
        await ada.until("MODE #a +i")
        await bob.send("JOIN #a")
        assert await bob.until(" 473 ") == ":anychat 473 bob #a :Cannot join channel (+i)"
        await ada.send("INVITE bob #a")
        assert await ada.until(" 341 ") == ":anychat 341 ada bob #a"
        assert await bob.until(" INVITE ") == ":ada!~ada@anychat INVITE bob #a"
        await bob.send("JOIN #a")
        assert await ada.until(" JOIN ") == ":bob!~bob@anychat JOIN #a"
        await ada.send("INVITE bob #a")
        assert await ada.until(" 443 ") == ":anychat 443 ada bob #a :is already on channel"
        await bob.send("INVITE cy #a")
        assert await bob.until(" 482 ") == ":anychat 482 bob #a :You're not channel operator"
        await ada.send("MODE #a -i+k sesame", "MODE #a +b cy")
        await ada.until("MODE #a +b cy!*@*")
        await cy.send("JOIN #a")
        assert await cy.until(" 474 ") == ":anychat 474 cy #a :Cannot join channel (+b)"
        await ada.send("MODE #a -b cy!*@*", "MODE #a +l 2")
        await ada.until("MODE #a +l 2")
        await cy.send("JOIN #a")
        assert await cy.until(" 475 ") == ":anychat 475 cy #a :Cannot join channel (+k)"
        await cy.send("JOIN #a sesame")
        assert await cy.until(" 471 ") == ":anychat 471 cy #a :Cannot join channel (+l)"


async def test_ban_list_and_moderation(server: anychat.Server) -> None:
    async with raw(server.port, "ada") as ada, raw(server.port, "bob") as bob:
        await ada.send("JOIN #a")
        await ada.until("366 ada #a")
        await bob.send("JOIN #a")
        await bob.until("366 bob #a")
        await ada.send("MODE #a +b bob", "MODE #a +b")
        ban = (await ada.until(" 367 ")).split()
        assert ban[:6] == [":anychat", "367", "ada", "#a", "bob!*@*", "ada"]
        assert ban[6].isdigit()
        assert await ada.line() == ":anychat 368 ada #a :End of channel ban list"
        await bob.send("PRIVMSG #a :can you hear me")
        assert await bob.until(" 404 ") == ":anychat 404 bob #a :Cannot send to channel"
        await ada.send("MODE #a -b+mv bob!*@* bob")
        await bob.until("MODE #a -b+mv bob!*@* bob")
        await bob.send("PRIVMSG #a :now I can")
        assert await ada.until("PRIVMSG") == ":bob!~bob@anychat PRIVMSG #a :now I can"


async def test_kick(server: anychat.Server) -> None:
    async with raw(server.port, "ada") as ada, raw(server.port, "bob") as bob:
        await ada.send("JOIN #a")
        await ada.until("366 ada #a")
        await bob.send("JOIN #a")
        await bob.until("366 bob #a")
        await bob.send("KICK #a ada :no")
        assert await lines_until_pong(bob) == [":anychat 482 bob #a :You're not channel operator"]
        await ada.send("KICK #a bob")
        assert await ada.until(" KICK ") == ":ada!~ada@anychat KICK #a bob :ada"
        assert await bob.until(" KICK ") == ":ada!~ada@anychat KICK #a bob :ada"
        await ada.send("KICK #a bob :again", "KICK #a nobody", "KICK #b ada")
        assert await lines_until_pong(ada) == [
            ":anychat 441 ada bob #a :They aren't on that channel",
            ":anychat 401 ada nobody :No such nick/channel",
            ":anychat 403 ada #b :No such channel",
        ]
        await bob.send("PRIVMSG #a :still here?")
        assert await bob.until(" 404 ") == ":anychat 404 bob #a :Cannot send to channel"


async def test_json_and_text_users_have_the_same_powers(server: anychat.Server) -> None:
    async with (
        raw(server.port, "ada") as ada,
        anychat.connect("127.0.0.1", server.port, nick="bob") as bob,
    ):
        await bob.join("#lab")  # bob creates it: bob is its operator
        await ada.send("JOIN #lab")
        await ada.until("366 ada #lab")
        await ada.send("NAMES #lab")
        assert (await ada.until(" 353 ")).endswith(":@bob ada")
        changed = await bob.set_modes("#lab", m.ModeChange(mode="o", arg="ada"))
        assert changed.changes == (m.ModeChange(mode="o", arg="ada"),)
        assert await ada.until(" MODE ") == ":bob!~bob@anychat MODE #lab +o ada"
        assert (await bob.set_modes("#lab", m.ModeChange(mode="o", arg="ada"))).changes == ()
        modes = await bob.modes("#lab")
        assert modes.modes == "+nt"
        assert (await bob.stats()).users == 2
        await ada.send("KICK #lab bob :bye")
        with anyio.fail_after(5):
            kicked = await bob.wait_for(m.Kicked)
        assert (kicked.nick, kicked.by, kicked.reason) == ("bob", "ada", "bye")


async def test_whox_answers_the_fields_asked_in_whox_order(server: anychat.Server) -> None:
    async with raw(server.port) as ada, raw(server.port, "bob") as bob:
        await ada.send("NICK ada", "USER adal 0 * :Ada Lovelace")
        await ada.until(" 001 ada ")
        await ada.send("JOIN #a", "AWAY :out")
        await ada.until(" 306 ada ")
        await bob.send("WHO #a %rnfuct,42", "WHO ada %na")
        assert await bob.until(" 354 ") == (":anychat 354 bob 42 #a ~adal ada G@ :Ada Lovelace")
        assert await bob.line() == ":anychat 315 bob #a :End of /WHO list"
        assert await bob.until(" 354 ") == ":anychat 354 bob ada 0"


async def test_tagmsg_is_accepted_quietly(server: anychat.Server) -> None:
    async with raw(server.port, "ada") as ada:
        await ada.until(" 422 ada ")
        await ada.send("@+typing=active TAGMSG #a")
        assert await lines_until_pong(ada) == []
