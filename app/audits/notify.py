"""Review reminders delivered to an IM group robot (WeCom, DingTalk, Feishu) or any webhook.

One message per reviewer with pending items, naming the campaign, the count and the due date, and
@-mentioning the reviewer by mobile where the robot supports it (WeCom, DingTalk).  Without a
configured webhook, reminders are recorded and logged only (channel ``log``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx


class ReminderError(RuntimeError):
    """The webhook refused or failed a reminder (the message says why)."""


def _text(campaign: str, due: datetime, name: str, pending: int, link: str | None) -> str:
    text = (f"【访问复核提醒】{name}，您在复核活动「{campaign}」中还有 {pending} 项待复核，"
            f"截止 {due.strftime('%Y-%m-%d %H:%M')} (UTC)。")
    return text + (f" {link}" if link else "")


def payload(kind: str, text: str, mobile: str | None) -> dict[str, Any]:
    """The robot's message body."""
    if kind == "wecom":
        return {"msgtype": "text", "text": {"content": text, "mentioned_mobile_list": [mobile] if mobile else []}}
    if kind == "dingtalk":
        return {"msgtype": "text", "text": {"content": text}, "at": {"atMobiles": [mobile] if mobile else []}}
    if kind == "feishu":
        return {"msg_type": "text", "content": {"text": text}}
    return {"text": text, "mobile": mobile}


class ReminderSender:
    """Posts reminders to one webhook."""

    def __init__(self, url: str, kind: str, *, timeout: float = 5.0, link: str | None = None) -> None:
        self.url, self.kind, self.timeout, self.link = url, kind, timeout, link

    def send(self, *, campaign: str, due: datetime, name: str, mobile: str | None, pending: int) -> None:
        body = payload(self.kind, _text(campaign, due, name, pending, self.link), mobile)
        try:
            r = httpx.post(self.url, json=body, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise ReminderError(f"webhook unreachable: {type(exc).__name__}") from exc
        if r.status_code // 100 != 2:
            raise ReminderError(f"webhook answered {r.status_code}")
        try:
            answer = r.json()
        except ValueError:
            return
        code = answer.get("errcode", answer.get("code", 0)) if isinstance(answer, dict) else 0
        if code not in (0, None):  # WeCom / DingTalk errcode, Feishu code
            raise ReminderError(f"webhook refused the message: code {code}")
