"""Group commit for the listener: replies arriving together are stored in one transaction.

Each handler thread hands its change in and waits for the outcome, as with a direct write.
Whichever thread finds no commit in progress takes everything waiting and commits it at
once; the others wait for that commit and, if theirs was not in it, take the next turn.
Under a burst one commit carries several replies (SQLite's cost is mostly per commit);
alone, a reply is committed at once, as before. No extra thread, nothing held in memory
beyond the handlers already waiting.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .errors import StoreError
from .store import ReplyChange, Store


@dataclass
class _Waiting:
    change: ReplyChange
    woken: threading.Event = field(default_factory=threading.Event)  # done, or its turn to commit
    done: bool = False
    outcome: bool | StoreError = False


class ReplyWriter:
    """Apply reply changes to the store, several per transaction when they arrive together."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []
        self._committing = False
        self.commits = 0  # how many transactions carried the changes (tests read it)

    def apply(self, change: ReplyChange) -> bool:
        """Store one change; return what `Store.record_reply`/`delete_reply` would (raise StoreError alike)."""
        mine = _Waiting(change)
        with self._lock:
            self._waiting.append(mine)
            leading = not self._committing
            if leading:
                self._committing = True
        if not leading:
            mine.woken.wait()  # each waits on its own event: a commit wakes only those it carried
        if not mine.done:  # our turn to commit: everything waiting, ours included
            with self._lock:
                batch, self._waiting = self._waiting, []
            self._commit(batch)
        if isinstance(mine.outcome, StoreError):
            raise mine.outcome
        return mine.outcome

    def _commit(self, batch: list[_Waiting]) -> None:
        outcomes: list[bool | StoreError] = [StoreError("could not store the reply")] * len(batch)
        try:
            outcomes = self.store.apply_reply_changes([w.change for w in batch])
        except Exception as exc:  # StoreErrors come back per change; anything else fails the batch
            outcomes = [StoreError(f"could not store the reply: {exc}")] * len(batch)
        finally:  # even on KeyboardInterrupt: the threads waiting must not wait forever
            with self._lock:
                self.commits += 1
                for waiting, outcome in zip(batch, outcomes, strict=True):
                    waiting.outcome, waiting.done = outcome, True
                    waiting.woken.set()
                if self._waiting:
                    self._waiting[0].woken.set()  # the next to arrive commits what gathered meanwhile
                else:
                    self._committing = False
