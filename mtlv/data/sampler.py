"""Length-aware batching: batches of similar lengths waste little padding, while shuffling keeps
the order random from epoch to epoch."""
from __future__ import annotations

from typing import Iterator

import numpy as np
from torch.utils.data import Sampler


class ResumableMixin:
    """After a resume from a mid-epoch checkpoint (saved on pre-emption, see PreemptionCheckpoint),
    the first pass of that epoch skips the indices the checkpoint had already trained on; as the
    order is a function of (seed, epoch), the rest of the epoch is exactly the uninterrupted one."""

    _resume: tuple[int, int] | None = None

    def resume_at(self, epoch: int, done: int) -> None:
        self._resume = (int(epoch), int(done))

    def _skip_done(self, order: list[int]) -> list[int]:
        resume, self._resume = self._resume, None
        return order[resume[1]:] if resume is not None and resume[0] == self.epoch else order


class LengthGroupedSampler(ResumableMixin, Sampler[int]):
    """Yield indices so that consecutive `batch_size` chunks have similar lengths.

    As in Hugging Face's `group_by_length`: shuffle, cut into mega-batches of `mega_batches`
    batches, sort each mega-batch by length, then shuffle the order of the resulting batches.
    With `shuffle=False` (evaluation) indices are simply sorted by length.
    Every index is yielded exactly once per epoch.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, shuffle: bool = True, seed: int = 0,
                 mega_batches: int = 50) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.mega = max(1, int(mega_batches)) * self.batch_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(np.argsort(-self.lengths, kind="stable").tolist())
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.lengths))
        batches = []
        for start in range(0, len(order), self.mega):
            mega = order[start: start + self.mega]
            mega = mega[np.argsort(-self.lengths[mega], kind="stable")]
            batches += [mega[i: i + self.batch_size] for i in range(0, len(mega), self.batch_size)]
        # The DataLoader re-chunks this stream into batch_size pieces, so the one short batch must
        # stay last; the longest full batch goes first so memory errors show up at step one.
        full = [b for b in batches if len(b) == self.batch_size]
        short = [b for b in batches if len(b) < self.batch_size]
        if full:
            longest = int(np.argmax([self.lengths[b].max() for b in full]))
            rest = [b for i, b in enumerate(full) if i != longest]
            full = [full[longest]] + [rest[i] for i in rng.permutation(len(rest))]
        ordered = full + short
        return iter(self._skip_done(np.concatenate(ordered).tolist() if ordered else []))


class EpochShuffleSampler(ResumableMixin, Sampler[int]):
    """A random permutation per epoch drawn from (seed, epoch) alone, like LengthGroupedSampler:
    unlike RandomSampler with a generator seeded once, a run resumed from a checkpoint sees the
    same order in every later epoch as an uninterrupted run (Lightning calls set_epoch)."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed, self.epoch = int(n), seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        return iter(self._skip_done(np.random.default_rng([self.seed, self.epoch]).permutation(self.n).tolist()))
