"""A scripted AMI peer, for edge cases the real Asterisk can't be made to produce on demand
(a connection cut between an Originate and its reply, a server that stops answering pings).
Every feature is also tested against the real Asterisk."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from dialer.asterisk.ami_protocol import AmiParser, Message

Reply = Callable[[Message], list[bytes] | None]


def block(**headers: str) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()


class FakeAmi:
    def __init__(self, secret: str = "s3cret") -> None:
        self.secret = secret
        self.received: list[Message] = []
        self.connections = 0
        self.answer_pings = True
        self.on_action: dict[str, Reply] = {}
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.astdb: dict[str, str] = {}  # "family/key" -> value (DBGet, DBPut, DBDelTree, DBGetTree)
        self.channels: set[str] = set()  # Uniqueids that CoreShowChannels lists

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        for writer in self.writers:
            writer.close()
        if self.server:
            self.server.close()
            await self.server.wait_closed()

    def drop_all(self) -> None:
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    def emit(self, **headers: str) -> None:
        """Send an event to every connected client."""
        for writer in self.writers:
            writer.write(block(**headers))

    def actions(self, name: str) -> list[Message]:
        return [m for m in self.received if m.get("Action") == name]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        parser = AmiParser()
        parser.banner = "client"  # clients send no banner
        try:
            while data := await reader.read(4096):
                for message in parser.feed(data):
                    self.received.append(message)
                    for chunk in self._reply(message):
                        writer.write(chunk)
        except ConnectionError:
            pass
        finally:
            writer.close()

    def _reply(self, message: Message) -> list[bytes]:
        action, action_id = message.get("Action", ""), message.get("ActionID", "")
        if action in self.on_action:
            return self.on_action[action](message) or []
        if action == "Login":
            ok = message.get("Secret") == self.secret
            return [
                block(
                    Response="Success" if ok else "Error",
                    ActionID=action_id,
                    Message="Authentication accepted" if ok else "Authentication failed",
                )
            ]
        if action == "Ping" and not self.answer_pings:
            return []
        if action.startswith("DB"):
            return self._astdb_action(action, message)
        if action == "CoreShowChannels":
            return _list(action_id, "CoreShowChannel", [{"Uniqueid": u} for u in sorted(self.channels)])
        return [block(Response="Success", ActionID=action_id, Ping="Pong")]

    def _astdb_action(self, action: str, message: Message) -> list[bytes]:
        action_id, family = message.get("ActionID", ""), message.get("Family", "")
        path = f"{family}/{message.get('Key', '')}"
        if action == "DBPut":
            self.astdb[path] = message.get("Val", "")
            return [block(Response="Success", ActionID=action_id, Message="Updated database successfully")]
        if action == "DBGet" and path in self.astdb:
            return _list(action_id, "DBGetResponse", [{"Family": family, "Val": self.astdb[path]}])
        if action == "DBGetTree":
            found = [
                {"Key": f"/{k}", "Val": v} for k, v in sorted(self.astdb.items()) if k.startswith(family)
            ]
            return _list(action_id, "DBGetTreeResponse", found)
        if action == "DBDelTree" and any(k.startswith(f"{family}/") for k in self.astdb):
            self.astdb = {k: v for k, v in self.astdb.items() if not k.startswith(f"{family}/")}
            return [block(Response="Success", ActionID=action_id, Message="Key tree deleted successfully")]
        return [block(Response="Error", ActionID=action_id, Message="Database entry not found")]


def _list(action_id: str, event: str, items: list[dict[str, str]]) -> list[bytes]:
    """A list action's reply as Asterisk sends it: a response, one event per item, a Complete."""
    head = block(Response="Success", ActionID=action_id, EventList="start", Message="Result will follow")
    body = [block(Event=event, ActionID=action_id, **item) for item in items]
    tail = block(Event=f"{event}Complete", ActionID=action_id, EventList="Complete")
    return [head, *body, tail]
