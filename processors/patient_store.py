"""The scorer's patient states by pseudonym, and their persistence across worker restarts.

The scorer works on ``PatientState`` objects in memory. ``PatientStore`` records which
patients a batch changed, and ``persist`` writes their state (or a tombstone for a
discharged patient) through a ``save`` callback. In the worker that callback writes to
a Faust table, whose changelog topic is partitioned like the input topics, and
``load`` reads the table that Faust recovered from that changelog after a restart.
"""

from __future__ import annotations

from collections.abc import Callable

from processors.features import PatientState

Load = Callable[[str], dict | None]
Save = Callable[[int, str, dict | None], None]


class PatientStore:
    """Patient states by pseudonym, with the changes since the last ``persist``."""

    def __init__(self, load: Load | None = None, save: Save | None = None) -> None:
        self._load = load or (lambda pseudonym: None)
        self._save = save
        self._states: dict[str, PatientState] = {}
        self._changed: dict[str, int] = {}  # pseudonym -> partition of the input that changed it

    def get(self, pseudonym: str) -> PatientState | None:
        state = self._states.get(pseudonym)
        if state is None:
            stored = self._load(pseudonym)
            if stored is not None:
                state = self._states[pseudonym] = PatientState.from_dict(stored)
        return state

    def __getitem__(self, pseudonym: str) -> PatientState:
        state = self.get(pseudonym)
        if state is None:
            raise KeyError(pseudonym)
        return state

    def __contains__(self, pseudonym: str) -> bool:
        return self.get(pseudonym) is not None

    def __len__(self) -> int:
        return len(self._states)

    def put(self, pseudonym: str, state: PatientState, partition: int) -> None:
        self._states[pseudonym] = state
        self._changed[pseudonym] = partition

    def changed(self, pseudonym: str, partition: int) -> None:
        """Mark a patient's state as changed by an input from ``partition``."""
        self._changed[pseudonym] = partition

    def pop(self, pseudonym: str, partition: int) -> None:
        """Forget a discharged patient, in memory and, at the next ``persist``, in storage."""
        self._states.pop(pseudonym, None)
        self._changed[pseudonym] = partition

    def persist(self) -> int:
        """Write every changed state (a tombstone for a forgotten one); return how many."""
        if self._save is None:
            self._changed.clear()
            return 0
        for pseudonym, partition in self._changed.items():
            state = self._states.get(pseudonym)
            self._save(partition, pseudonym, state.to_dict() if state is not None else None)
        count = len(self._changed)
        self._changed.clear()
        return count
