"""Every sentence the operator's commands say (Telegram and Discord alike), and the one a banned person reads.
Plain English; the translators take them from here."""

from __future__ import annotations

from core.admin.views import BanView, PeriodStats, QueueView
from core.words import human_duration, human_size

BANNED = "You can't use this bot."
BANNED_BECAUSE = "You can't use this bot. Reason: {reason}"
BAN_SELF = "You can't ban yourself."
BAN_OPERATOR = "That person is an operator: remove their id from the admins setting first."
UNKNOWN_USER = "No one with that id has used this bot."
NOT_BANNED = "That person is not banned."
BAD_SOURCE = "The source must be telegram, discord or api."
BAD_USER_ID = "A user id is a number (or an API key's id): 1-128 letters, digits and _ . @ : -."
REASON_TOO_LONG = "Keep the reason under 200 characters."
BAD_LIMIT = "The number of downloads per hour must be a whole number from 1 to 100000, or default."

BAN_USAGE = (
    "Use /ban USER [reason], where USER is a numeric id; or reply /ban [reason] to the person's message."
)
UNBAN_USAGE = "Use /unban USER, where USER is a numeric id; or reply /unban to the person's message."
LIMITS_USAGE = (
    "Use /limits USER N to give that person N downloads per hour (/limits USER default to undo it), "
    "or reply /limits N to their message."
)


def banned(reason: str | None) -> str:
    return BANNED_BECAUSE.format(reason=reason) if reason else BANNED


def ban_done(user_id: str, reason: str | None) -> str:
    return f"Banned {user_id}: {reason}." if reason else f"Banned {user_id}."


def unban_done(user_id: str) -> str:
    return f"{user_id} may use the bot again."


def limit_done(user_id: str, per_hour: int, overridden: bool) -> str:
    if overridden:
        return f"{user_id} may now start {per_hour} downloads per hour."
    return f"{user_id} is back to the usual {per_hour} downloads per hour."


def limit_shown(user_id: str, per_hour: int, overridden: bool) -> str:
    own = " (their own limit)" if overridden else " (the usual limit)"
    return f"{user_id} may start {per_hour} downloads per hour{own}."


def stats_text(periods: list[PeriodStats]) -> str:
    """The /stats answer: one block per period (today, the last 7 days)."""
    blocks = []
    for p in periods:
        failures = ", ".join(f"{code} {count}" for code, count in p.failures.items()) or "none"
        sites = ", ".join(f"{s.site} {s.requests}" for s in p.top_sites) or "none"
        users = ", ".join(f"{u.source}:{u.user_id} {u.requests}" for u in p.busiest_users) or "none"
        blocks.append(
            f"{p.label}:\n"
            f"Requests: {p.requests}\n"
            f"Downloads: {p.downloads}\n"
            f"Cache hits: {p.cache_hits}\n"
            f"Downloaded: {human_size(p.bytes)}\n"
            f"Failures: {failures}\n"
            f"Top sites: {sites}\n"
            f"Busiest users: {users}"
        )
    return "\n\n".join(blocks)


TODAY = "Today (UTC)"
LAST_7_DAYS = "Last 7 days"


def queue_text(queue: QueueView) -> str:
    """The /queue answer: per site, how many run and wait, then the oldest few."""
    if not queue.sites:
        return "Nothing is running or waiting."
    lines = [f"{s.site}: {s.running} running, {s.queued} waiting" for s in queue.sites]
    if queue.jobs:
        lines.append("")
    for job in queue.jobs[:10]:
        state = "running" if job.status == "running" else "waiting"
        lines.append(f"{job.title or job.site}: {state} for {human_duration(job.age_s)}")
    return "\n".join(lines)


def bans_text(bans: list[BanView]) -> str:
    if not bans:
        return "No one is banned."
    return "\n".join(f"{b.source}:{b.user_id}" + (f" ({b.reason})" if b.reason else "") for b in bans)
