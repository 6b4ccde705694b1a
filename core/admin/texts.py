"""Every sentence the operator's commands say (Telegram and Discord alike), and the one a banned person reads,
in the current person's language (core.i18n: the handler set it). The constants are English message ids
(`N_`): an error carries one and whoever says it translates it (`_(exc.message)`), as every core error does."""

from __future__ import annotations

from core.admin.views import BanView, PeriodStats, QueueView
from core.i18n import N_, _, ngettext
from core.words import human_duration, human_size

BANNED = N_("You can't use this bot.")
BANNED_BECAUSE = N_("You can't use this bot. Reason: {reason}")
BAN_SELF = N_("You can't ban yourself.")
BAN_OPERATOR = N_("That person is an operator: remove their id from the admins setting first.")
UNKNOWN_USER = N_("No one with that id has used this bot.")
NOT_BANNED = N_("That person is not banned.")
BAD_SOURCE = N_("The source must be telegram, discord or api.")
BAD_USER_ID = N_("A user id is a number (or an API key's id): 1-128 letters, digits and _ . @ : -.")
REASON_TOO_LONG = N_("Keep the reason under 200 characters.")
BAD_LIMIT = N_("The number of downloads per hour must be a whole number from 1 to 100000, or default.")

BAN_USAGE = N_(
    "Use /ban USER [reason], where USER is a numeric id; or reply /ban [reason] to the person's message."
)
UNBAN_USAGE = N_("Use /unban USER, where USER is a numeric id; or reply /unban to the person's message.")
LIMITS_USAGE = N_(
    "Use /limits USER N to give that person N downloads per hour (/limits USER default to undo it), "
    "or reply /limits N to their message."
)

TODAY = N_("Today (UTC)")
LAST_7_DAYS = N_("Last 7 days")


def banned(reason: str | None) -> str:
    """Said in the banned person's language: the reason is formatted in, so it is translated here, not by
    whoever says it (`_()` of a translated sentence gives it back unchanged)."""
    return _(BANNED_BECAUSE).format(reason=reason) if reason else _(BANNED)


def ban_done(user_id: str, reason: str | None) -> str:
    if reason:
        return _("Banned {user_id}: {reason}.").format(user_id=user_id, reason=reason)
    return _("Banned {user_id}.").format(user_id=user_id)


def unban_done(user_id: str) -> str:
    return _("{user_id} may use the bot again.").format(user_id=user_id)


# Whole sentences with the number in them (not "N downloads per hour" pasted into one), so each language can
# bend the rest of the sentence around its plural form.
def limit_done(user_id: str, per_hour: int, overridden: bool) -> str:
    if overridden:
        text = ngettext(
            "{user_id} may now start {n} download per hour.",
            "{user_id} may now start {n} downloads per hour.",
            per_hour,
        )
    else:
        text = ngettext(
            "{user_id} is back to the usual {n} download per hour.",
            "{user_id} is back to the usual {n} downloads per hour.",
            per_hour,
        )
    return text.format(user_id=user_id, n=per_hour)


def limit_shown(user_id: str, per_hour: int, overridden: bool) -> str:
    if overridden:
        text = ngettext(
            "{user_id} may start {n} download per hour (their own limit).",
            "{user_id} may start {n} downloads per hour (their own limit).",
            per_hour,
        )
    else:
        text = ngettext(
            "{user_id} may start {n} download per hour (the usual limit).",
            "{user_id} may start {n} downloads per hour (the usual limit).",
            per_hour,
        )
    return text.format(user_id=user_id, n=per_hour)


def stats_text(periods: list[PeriodStats]) -> str:
    """The /stats answer: one block per period (today, the last 7 days)."""
    none = _("none")
    blocks = []
    for p in periods:
        failures = ", ".join(f"{code} {count}" for code, count in p.failures.items()) or none
        sites = ", ".join(f"{s.site} {s.requests}" for s in p.top_sites) or none
        users = ", ".join(f"{u.source}:{u.user_id} {u.requests}" for u in p.busiest_users) or none
        blocks.append(
            "\n".join(
                [
                    f"{_(p.label)}:",
                    _("Requests: {n}").format(n=p.requests),
                    _("Downloads: {n}").format(n=p.downloads),
                    _("Cache hits: {n}").format(n=p.cache_hits),
                    _("Downloaded: {size}").format(size=human_size(p.bytes)),
                    _("Failures: {list}").format(list=failures),
                    _("Top sites: {list}").format(list=sites),
                    _("Busiest users: {list}").format(list=users),
                ]
            )
        )
    return "\n\n".join(blocks)


def queue_text(queue: QueueView) -> str:
    """The /queue answer: per site, how many run and wait, then the oldest few."""
    if not queue.sites:
        return _("Nothing is running or waiting.")
    lines = [
        _("{site}: {running} running, {queued} waiting").format(
            site=s.site, running=s.running, queued=s.queued
        )
        for s in queue.sites
    ]
    if queue.jobs:
        lines.append("")
    for job in queue.jobs[:10]:
        what, age = job.title or job.site, human_duration(job.age_s)
        if job.status == "running":
            lines.append(_("{what}: running for {age}").format(what=what, age=age))
        else:
            lines.append(_("{what}: waiting for {age}").format(what=what, age=age))
    return "\n".join(lines)


def bans_text(bans: list[BanView]) -> str:
    if not bans:
        return _("No one is banned.")
    return "\n".join(f"{b.source}:{b.user_id}" + (f" ({b.reason})" if b.reason else "") for b in bans)
