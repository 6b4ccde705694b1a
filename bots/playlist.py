"""A playlist as a chat lists it: its items in order, each item's state while it is on its way, and how each
delivered item went out. How an item went out is stored with the item's request (`target["delivered_as"]`)
when it is delivered, so a restarted bot lists it the same way (a link stays "sent as a link")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from core.jobs.views import JobView, RequestView

# Stored in a playlist item's target once it is delivered.
DELIVERED_AS = "delivered_as"
Outcome = Literal["file", "copy", "link", "failed", "cancelled"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
# The planner's outcome for an item's file, as stored.
PLANNED: dict[str, Outcome] = {"as_is": "file", "fitted": "copy", "link": "link", "cancelled": "cancelled"}


def delivered_as(request: RequestView, job: JobView) -> Outcome | None:
    """How a delivered item went out; None while it is not delivered."""
    if request.delivered_at is None:
        return None
    stored = request.target.get(DELIVERED_AS)
    if stored in OUTCOMES:
        return stored  # type: ignore[no-any-return]
    # Delivered by a version that did not store it: the job's end is the best guess.
    return {"done": "file", "cancelled": "cancelled"}.get(job.status, "failed")  # type: ignore[return-value]


@dataclass
class Item:
    """One playlist item."""

    request_id: str
    title: str  # as first listed: the item's title, else its link
    job: JobView  # the item's download, as last read
    cancelled: bool = False  # its request was cancelled
    outcome: Outcome | None = None  # how it went out, once delivered
    copy: JobView | None = None  # the copy being made to fit, while it is made
    sending: bool = False  # its file is being sent
    sent: JobView | None = None  # the file that went out (a copy's own when it was fitted)

    @classmethod
    def of(cls, request: RequestView, job: JobView) -> Item:
        return cls(
            request.id, job.title or request.url, job, cancelled=request.status == "cancelled",
            outcome=delivered_as(request, job),
        )  # fmt: skip


@dataclass
class Playlist:
    view: JobView  # the playlist's own job (its title, how many items of how many)
    items: dict[str, Item] = field(default_factory=dict)  # by request id, in playlist order
    cancelling: int = 0  # items the person cancelled while the rest goes on
    finished: bool = False  # every item went out (or failed, or was cancelled)
    cancelled: bool = False  # the person cancelled the playlist as a whole

    @classmethod
    def of(cls, view: JobView, children: list[tuple[RequestView, JobView]]) -> Playlist:
        return cls(view, {request.id: Item.of(request, job) for request, job in children})

    def update(self, request: RequestView, job: JobView) -> Item:
        """The item of `request` with its newest state (added when the playlist did not list it yet)."""
        item = self.items.get(request.id)
        if item is None:
            item = self.items[request.id] = Item.of(request, job)
        item.job = job
        item.cancelled = item.cancelled or request.status == "cancelled"
        return item

    def refresh(self, children: list[tuple[RequestView, JobView]]) -> None:
        """Every listed item's newest state (downloading, done...), read after one of them went out."""
        for request, job in children:
            if request.id in self.items:
                self.update(request, job)

    def outcomes(self) -> list[Outcome]:
        """How each delivered item went out, in playlist order."""
        return [item.outcome for item in self.items.values() if item.outcome is not None]
