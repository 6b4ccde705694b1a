"""What an operator sees of pacing (doctor, /health/detailed, /metrics): per site and identity, requests,
successes, refusals and rests; per limited site, slots held and jobs waiting. Names only, never a cookie or
a proxy password (identity names are `<file>@<redacted proxy>`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from . import Pacing
from .identities import PoolStats
from .slots import SiteSlots


@dataclass(frozen=True)
class PacingReport:
    limits: str
    proxies: str
    pool: PoolStats
    slots: tuple[SiteSlots, ...]


async def pacing_report(pacing: Pacing) -> PacingReport:
    pool = await pacing.identities.stats()
    # Sites with a rule of their own, and those the `*` rule has paced (they show up in the pool's counts).
    sites = dict.fromkeys(pacing.limits.by_site)
    if pacing.limits.default is not None:
        sites.update(dict.fromkeys(s.site for s in pool.sites))
    slots = tuple([await pacing.pacer.slots(site) for site in sites])
    return PacingReport(str(pacing.limits), str(pacing.proxies), pool, slots)


def _clock(until: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(until))


def report_dict(report: PacingReport) -> dict[str, Any]:
    """For /health/detailed: plain JSON."""
    return {
        "limits": report.limits or None,
        "proxies": report.proxies or None,
        "slots": {s.site: {"held": s.holders, "waiting": s.waiting} for s in report.slots},
        "sites": {
            site.site: {
                **site.counts,
                "set_aside": list(site.set_aside),
                "resting": {i.identity: _clock(i.resting_until) for i in site.identities if i.resting_until},
            }
            for site in report.pool.sites
        },
        "proxies_resting": {proxy: _clock(until) for proxy, until in report.pool.proxies_resting.items()},
    }


def report_lines(report: PacingReport) -> list[str]:
    """For `mediabot doctor`: one line per fact."""
    lines = [
        f"site limits: {report.limits or 'none (MEDIABOT_SITE_LIMITS)'}",
        f"proxies: {report.proxies or 'none (MEDIABOT_PROXIES)'}",
    ]
    for slot in report.slots:
        lines.append(f"{slot.site}: {slot.holders} downloading, {slot.waiting} waiting")
    for site in report.pool.sites:
        c = site.counts
        lines.append(
            f"{site.site}: {c.get('requests', 0)} requests, {c.get('successes', 0)} successes, "
            f"{c.get('rate_limits', 0) + c.get('bot_checks', 0)} refusals"
        )
        for identity in site.identities:
            if identity.resting_until:
                lines.append(f"{site.site}: {identity.identity} rests until {_clock(identity.resting_until)}")
        for name in site.set_aside:
            lines.append(f"{site.site}: cookies file {name} set aside (the site asked to log in): replace it")
    for proxy, until in report.pool.proxies_resting.items():
        lines.append(f"proxy {proxy} rests until {_clock(until)} (unreachable)")
    return lines
