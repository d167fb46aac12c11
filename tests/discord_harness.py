"""Drive the bot through discord.py's real interaction parser, with no Discord at all.

Raw ``INTERACTION_CREATE`` payloads go to ``bot._connection.parse_interaction_create``;
what the bot sends back is captured by patching the webhook adapter (interaction
responses, follow-ups and their edits never go through ``HTTPClient``) and the two
``HTTPClient`` calls used for plain channel messages (battle results at a deadline).

Everything here leans on discord.py internals (``_connection``, the adapter, task names),
which is why ``pyproject.toml`` pins ``discord.py>=2.7,<2.8`` and why it lives in this one
module.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import discord
from discord.webhook.async_ import AsyncWebhookAdapter

APP_ID = 900_000_000_000_000_001
BOT_USER_ID = 900_000_000_000_000_002
GUILD_ID = 910_000_000_000_000_001
CHANNEL_ID = 920_000_000_000_000_001
MANAGE_GUILD = 1 << 5
# what an ordinary member may do in the channel (view, send, embed links, read history, ...)
MEMBER_PERMISSIONS = discord.Permissions(
    view_channel=True, send_messages=True, embed_links=True, read_message_history=True
).value

# the names discord.py gives the tasks that run interaction handlers
HANDLER_TASK_PREFIXES = (
    "CommandTree-invoker",
    "discord-ui-view-dispatch-",
    "discord-ui-dynamic-item-",
    "discord-ui-modal-dispatch-",
)

_ids = itertools.count(930_000_000_000_000_001)


def snowflake() -> int:
    return next(_ids)


def now_iso() -> str:
    return discord.utils.utcnow().isoformat()


@dataclass(frozen=True)
class Member:
    id: int
    name: str
    bot: bool = False
    manager: bool = False

    def user_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": self.name,
            "avatar": None,
            "bot": self.bot,
        }

    def member_payload(self, *, with_user: bool = True) -> dict[str, Any]:
        perms = MEMBER_PERMISSIONS | (MANAGE_GUILD if self.manager else 0)
        data: dict[str, Any] = {
            "roles": [],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": str(perms),
            "nick": None,
            "avatar": None,
        }
        if with_user:
            data["user"] = self.user_payload()
        return data


@dataclass
class Sent:
    """One thing the bot sent: an interaction response, a follow-up, an edit or a channel post."""

    kind: str  # "response" | "followup" | "edit" | "delete" | "channel" | "channel_edit"
    token: str | None
    payload: dict[str, Any]
    files: list[tuple[str, bytes]] = field(default_factory=list)
    message_id: int | None = None
    response_type: int | None = None
    at: float = field(default_factory=time.perf_counter)  # when it was sent

    @property
    def data(self) -> dict[str, Any]:
        """The message part: an interaction response nests it under "data"."""
        if self.kind == "response":
            return self.payload.get("data") or {}
        return self.payload

    @property
    def content(self) -> str:
        return self.data.get("content") or ""

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return self.data.get("embeds") or []

    @property
    def ephemeral(self) -> bool:
        return bool((self.data.get("flags") or 0) & 64)

    @property
    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for c in _walk_components(self.data.get("components") or [])]

    @property
    def carries_message(self) -> bool:
        """A message was created or edited (a bare defer or a modal is not a message)."""
        if self.kind == "delete":
            return False
        return self.kind != "response" or self.response_type in (4, 7)

    @property
    def allows_no_mentions(self) -> bool:
        """Discord's "ping nobody": parse=[] and no user, role or replied-user lists."""
        mentions = self.data.get("allowed_mentions")
        return (
            mentions is not None
            and mentions.get("parse") == []
            and not mentions.get("users")
            and not mentions.get("roles")
            and not mentions.get("replied_user")
        )

    @property
    def text(self) -> str:
        """Content plus every embed's title, description, fields and footer: what a member reads."""
        parts = [self.content]
        for embed in self.embeds:
            parts += [embed.get("title") or "", embed.get("description") or ""]
            for f in embed.get("fields") or []:
                parts += [f.get("name") or "", f.get("value") or ""]
            parts.append((embed.get("footer") or {}).get("text") or "")
        return "\n".join(p for p in parts if p)


def _walk_components(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for c in components:
        if "components" in c:
            yield from _walk_components(c["components"])
        if "component" in c:
            yield from _walk_components([c["component"]])
        if "custom_id" in c:
            yield c


def _split_params(
    payload: dict[str, Any] | None, multipart: list[dict[str, Any]] | None, files: Any
) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    if payload is None and multipart:
        payload = json.loads(multipart[0]["value"])
    captured: list[tuple[str, bytes]] = []
    for f in files or []:
        f.reset()
        captured.append((f.filename or "", f.fp.read()))
        f.reset()
    return dict(payload or {}), captured


class Replies(list[Sent]):
    """What one interaction got back so far; ``token`` finds later ones (``h.replies``)."""

    def __init__(self, token: str, items: list[Sent]) -> None:
        super().__init__(items)
        self.token = token


class Harness:
    """A bot with its replies captured. Use ``async with Harness(bot) as h``."""

    def __init__(
        self,
        bot: discord.Client,
        *,
        guild_id: int = GUILD_ID,
        messages: dict[int, dict[str, Any]] | None = None,
    ) -> None:
        """``messages``: the channel history so far (another harness's, for a restart)."""
        self.bot = bot
        self.guild_id = guild_id
        self.sent: list[Sent] = []
        self.dispatched: dict[str, float] = {}  # token -> when the interaction arrived
        self.messages: dict[int, dict[str, Any]] = dict(messages or {})
        self._patches: list[tuple[object, str, Any]] = []

    # -- set-up -----------------------------------------------------------------------

    async def __aenter__(self) -> Harness:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        state = self.bot._connection
        state.user = discord.ClientUser(
            state=state,
            data={
                "id": str(BOT_USER_ID),
                "username": "rgpt2",
                "discriminator": "0",
                "avatar": None,
                "bot": True,
                "verified": True,
                "mfa_enabled": False,
                "flags": 0,
            },
        )
        state.application_id = APP_ID
        self._patch_adapter()
        await self.bot._async_setup_hook()
        await self.bot.setup_hook()

    async def stop(self) -> None:
        await self.settle()
        for obj, name, original in reversed(self._patches):
            setattr(obj, name, original)
        self._patches.clear()
        close = getattr(self.bot, "close_services", None)
        if close is not None:
            await close()

    def _patch(self, obj: object, name: str, fake: Any) -> None:
        self._patches.append((obj, name, getattr(obj, name)))
        setattr(obj, name, fake)

    def _message(self, message_id: int, data: dict[str, Any], channel_id: int) -> dict[str, Any]:
        old = self.messages.get(message_id, {})
        msg = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "guild_id": str(self.guild_id),
            "author": {
                "id": str(BOT_USER_ID),
                "username": "rgpt2",
                "discriminator": "0",
                "avatar": None,
                "bot": True,
            },
            "content": "",
            "embeds": [],
            "components": [],
            "attachments": [],
            "timestamp": now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }
        msg.update({k: v for k, v in old.items() if k in msg})
        for key in ("content", "embeds", "components", "flags"):
            if key in data:
                msg[key] = data[key]
        self.messages[message_id] = msg
        return msg

    def _patch_adapter(self) -> None:
        harness = self

        async def create_interaction_response(
            _self: Any, interaction_id: int, token: str, *, params: Any, **_: Any
        ) -> dict[str, Any]:
            payload, files = _split_params(params.payload, params.multipart, params.files)
            rtype = payload.get("type")
            data = payload.get("data") or {}
            message_id: int | None = None
            if rtype in (4, 5):  # a new message (or its "thinking" placeholder)
                message_id = snowflake()
                harness._message(message_id, data, harness._channels.get(token, CHANNEL_ID))
                harness._originals[token] = message_id
                if rtype == 5:
                    harness._placeholders[token] = message_id
            elif rtype == 7:  # edit the message the component is on
                message_id = harness._component_message.get(token)
                if message_id is not None:
                    harness._originals[token] = message_id
                    harness._message(message_id, data, harness._channels.get(token, CHANNEL_ID))
            harness.sent.append(Sent("response", token, payload, files, message_id, rtype))
            interaction: dict[str, Any] = {
                "id": str(interaction_id),
                "type": 2,
                "response_message_loading": rtype == 5,
                "response_message_ephemeral": bool((data.get("flags") or 0) & 64),
            }
            if message_id is not None:
                interaction["response_message_id"] = str(message_id)
            return {"interaction": interaction}

        async def execute_webhook(
            _self: Any,
            webhook_id: int,
            token: str,
            *,
            payload: dict[str, Any] | None = None,
            multipart: list[dict[str, Any]] | None = None,
            files: Any = None,
            **_: Any,
        ) -> dict[str, Any]:
            body, captured = _split_params(payload, multipart, files)
            # as Discord does: the first follow-up after a defer becomes the "thinking..."
            # message (flags such as ephemeral come from the defer, not from the follow-up)
            message_id = harness._placeholders.pop(token, None) or snowflake()
            msg = harness._message(message_id, body, harness._channels.get(token, CHANNEL_ID))
            harness.sent.append(Sent("followup", token, body, captured, message_id))
            return msg

        async def edit_webhook_message(
            _self: Any,
            webhook_id: int,
            token: str,
            message_id: int,
            *,
            payload: dict[str, Any] | None = None,
            multipart: list[dict[str, Any]] | None = None,
            files: Any = None,
            **_: Any,
        ) -> dict[str, Any]:
            body, captured = _split_params(payload, multipart, files)
            if message_id == "@original":
                message_id = harness._originals[token]
            if harness._placeholders.get(token) == int(message_id):
                del harness._placeholders[token]
            msg = harness._message(int(message_id), body, harness._channels.get(token, CHANNEL_ID))
            harness.sent.append(Sent("edit", token, body, captured, int(message_id)))
            return msg

        async def edit_original_interaction_response(
            _self: Any, application_id: int, token: str, **kwargs: Any
        ) -> dict[str, Any]:
            return await edit_webhook_message(_self, application_id, token, "@original", **kwargs)

        async def get_original_interaction_response(
            _self: Any, application_id: int, token: str, **_: Any
        ) -> dict[str, Any]:
            return harness.messages[harness._originals[token]]

        async def delete_original(_self: Any, application_id: int, token: str, **_: Any) -> None:
            message_id = harness._originals.get(token)
            harness._placeholders.pop(token, None)
            harness.messages.pop(message_id, None)
            harness.sent.append(Sent("delete", token, {}, [], message_id))

        async def delete_message(
            _self: Any, webhook_id: int, token: str, message_id: int, **_: Any
        ) -> None:
            harness.messages.pop(int(message_id), None)
            harness.sent.append(Sent("delete", token, {}, [], int(message_id)))

        self._originals: dict[str, int] = {}
        self._placeholders: dict[str, int] = {}  # deferred, not replaced yet
        self._channels: dict[str, int] = {}
        self._component_message: dict[str, int] = {}
        for name, fake in (
            ("create_interaction_response", create_interaction_response),
            ("execute_webhook", execute_webhook),
            ("edit_webhook_message", edit_webhook_message),
            ("edit_original_interaction_response", edit_original_interaction_response),
            ("get_original_interaction_response", get_original_interaction_response),
            ("delete_original_interaction_response", delete_original),
            ("delete_webhook_message", delete_message),
        ):
            self._patch(AsyncWebhookAdapter, name, fake)

        http = self.bot.http

        async def send_message(channel_id: int, *, params: Any) -> dict[str, Any]:
            body, captured = _split_params(params.payload, params.multipart, params.files)
            message_id = snowflake()
            msg = harness._message(message_id, body, int(channel_id))
            harness.sent.append(Sent("channel", None, body, captured, message_id))
            return msg

        async def edit_message(channel_id: int, message_id: int, *, params: Any) -> dict[str, Any]:
            body, captured = _split_params(params.payload, params.multipart, params.files)
            msg = harness._message(int(message_id), body, int(channel_id))
            harness.sent.append(Sent("channel_edit", None, body, captured, int(message_id)))
            return msg

        self._patch(http, "send_message", send_message)
        self._patch(http, "edit_message", edit_message)
        # Attachment.read would download from the CDN: serve the bytes the test registered
        self._patch(discord.Attachment, "read", _read_attachment)

    # -- interactions -----------------------------------------------------------------

    def _base(
        self, itype: int, user: Member, channel_id: int, token: str | None = None
    ) -> dict[str, Any]:
        token = token or f"tok-{snowflake()}"
        self._channels[token] = channel_id
        return {
            "id": str(snowflake()),
            "application_id": str(APP_ID),
            "type": itype,
            "token": token,
            "version": 1,
            "guild_id": str(self.guild_id),
            "channel_id": str(channel_id),
            "channel": {
                "id": str(channel_id),
                "type": 0,
                "guild_id": str(self.guild_id),
                "name": f"chan-{channel_id % 1000}",
                "position": 0,
                "permission_overwrites": [],
                "nsfw": False,
                "parent_id": None,
            },
            "member": user.member_payload(),
            "app_permissions": str(discord.Permissions.all().value),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "attachment_size_limit": 8 * 1024 * 1024,
        }

    async def slash(
        self,
        command: str,
        user: Member,
        *,
        channel_id: int = CHANNEL_ID,
        users: dict[str, Member] | None = None,
        attachments: dict[str, dict[str, Any]] | None = None,
        channels: dict[str, int] | None = None,
        settle: bool = True,
        **options: Any,
    ) -> Replies:
        """Invoke ``/command`` ("admin finetune" for a subcommand) and return what it sent.

        ``options`` are plain values; ``users`` maps option name to a member (type 6) and
        ``attachments`` maps option name to an attachment payload (type 11), ``channels``
        option name to a channel id (type 7).
        """
        names = command.split()
        opts: list[dict[str, Any]] = []
        resolved: dict[str, Any] = {}
        for name, value in options.items():
            if value is None:
                continue
            if isinstance(value, bool):
                otype = 5
            elif isinstance(value, int):
                otype = 4
            elif isinstance(value, float):
                otype = 10
            else:
                otype = 3
            opts.append({"name": name, "type": otype, "value": value})
        for name, member in (users or {}).items():
            opts.append({"name": name, "type": 6, "value": str(member.id)})
            resolved.setdefault("users", {})[str(member.id)] = member.user_payload()
            resolved.setdefault("members", {})[str(member.id)] = member.member_payload(
                with_user=False
            )
        for name, cid in (channels or {}).items():
            opts.append({"name": name, "type": 7, "value": str(cid)})
            resolved.setdefault("channels", {})[str(cid)] = {
                "id": str(cid),
                "type": 0,
                "name": f"chan-{cid % 1000}",
                "permissions": str(MEMBER_PERMISSIONS),
                "parent_id": None,
                "nsfw": False,
            }
        for name, attachment in (attachments or {}).items():
            opts.append({"name": name, "type": 11, "value": attachment["id"]})
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
        for sub in reversed(names[1:]):
            opts = [{"name": sub, "type": 1, "options": opts}]
        payload = self._base(2, user, channel_id)
        payload["data"] = {
            "id": str(snowflake()),
            "name": names[0],
            "type": 1,
            "options": opts,
            "resolved": resolved,
        }
        return await self._dispatch(payload, settle)

    async def click(
        self,
        message_id: int,
        custom_id: str,
        user: Member,
        *,
        settle: bool = True,
    ) -> Replies:
        """Press the button ``custom_id`` on a message the bot posted."""
        message = self.messages[message_id]
        present = [c["custom_id"] for c in _walk_components(message["components"])]
        assert custom_id in present, f"no button {custom_id} on message {message_id}: {present}"
        channel_id = int(message["channel_id"])
        payload = self._base(3, user, channel_id)
        payload["message"] = message
        payload["data"] = {"custom_id": custom_id, "component_type": 2}
        self._component_message[payload["token"]] = message_id
        return await self._dispatch(payload, settle)

    async def submit_modal(
        self,
        custom_id: str,
        user: Member,
        values: dict[str, str],
        *,
        channel_id: int = CHANNEL_ID,
        message_id: int | None = None,
    ) -> Replies:
        """Submit the modal ``custom_id`` with text inputs ``{input custom_id: value}``.

        ``message_id``: the message whose button opened the modal (Discord sends it along,
        and the answer may edit it).
        """
        payload = self._base(5, user, channel_id)
        if message_id is not None:
            payload["message"] = self.messages[message_id]
            self._component_message[payload["token"]] = message_id
        payload["data"] = {
            "custom_id": custom_id,
            "components": [
                {
                    "type": 18,
                    "id": i + 1,
                    "component": {"type": 4, "id": i + 10, "custom_id": cid, "value": value},
                }
                for i, (cid, value) in enumerate(values.items())
            ],
        }
        return await self._dispatch(payload, True)

    async def _dispatch(self, payload: dict[str, Any], settle: bool) -> Replies:
        token = payload["token"]
        self.dispatched[token] = time.perf_counter()
        self.bot._connection.parse_interaction_create(payload)
        if settle:
            await self.settle()
        else:
            await asyncio.sleep(0)  # let the handler task start
        return self.replies(token)

    async def wait_for(self, token: str, predicate: Any, timeout: float = 10.0) -> Sent:
        """The first reply to ``token`` that satisfies ``predicate`` (waits for it)."""
        async with asyncio.timeout(timeout):
            while True:
                for sent in self.replies(token):
                    if predicate(sent):
                        return sent
                await asyncio.sleep(0.005)

    def assert_no_pings(self) -> None:
        """Every message the bot created or edited so far allowed no mentions at all."""
        messages = [s for s in self.sent if s.carries_message]
        assert messages, "nothing was sent"
        for sent in messages:
            assert sent.allows_no_mentions, f"a message that could ping: {sent}"

    def replies(self, token: str) -> Replies:
        return Replies(token, [s for s in self.sent if s.token == token])

    def channel_posts(self) -> list[Sent]:
        return [s for s in self.sent if s.kind == "channel"]

    async def settle(self, timeout: float = 20.0) -> None:
        """Wait until every interaction handler task has finished (never view timeouts)."""

        async def drain() -> None:
            while True:
                await asyncio.sleep(0)
                pending = [
                    t
                    for t in asyncio.all_tasks()
                    if not t.done() and t.get_name().startswith(HANDLER_TASK_PREFIXES)
                ]
                if not pending:
                    # one more turn: a finished handler may have scheduled another
                    await asyncio.sleep(0.01)
                    if not any(
                        not t.done() and t.get_name().startswith(HANDLER_TASK_PREFIXES)
                        for t in asyncio.all_tasks()
                    ):
                        return
                    continue
                await asyncio.wait(pending)

        await asyncio.wait_for(drain(), timeout)


def attachment(filename: str, data: bytes, *, content_type: str = "text/plain") -> dict[str, Any]:
    """An attachment payload whose URL the bot reads through ``Attachment.read`` (patched)."""
    aid = str(snowflake())
    ATTACHMENT_BYTES[aid] = data
    return {
        "id": aid,
        "filename": filename,
        "size": len(data),
        "url": f"https://cdn.example/{aid}/{filename}",
        "proxy_url": f"https://cdn.example/{aid}/{filename}",
        "content_type": content_type,
    }


ATTACHMENT_BYTES: dict[str, bytes] = {}


async def _read_attachment(self: discord.Attachment, **_: Any) -> bytes:
    return ATTACHMENT_BYTES[str(self.id)]
