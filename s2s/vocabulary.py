"""Vocabulary: tokens ↔ ids, with the source-extended ids of the pointer-generator.

    vocab = Vocabulary.build(corpus.targets, max_size=30000, min_freq=2)
    vocab.encode(["方向机", "重"])                    # [57, 912]
    ids, oovs = vocab.encode_extended(src_tokens)     # OOV source words → len(vocab) + k
    vocab.encode_with_oovs(tgt_tokens, oovs)          # target words copied from the source

Ids 0-3 are the specials ``<pad> <unk> <s> </s>``. Saved as plain text, one token per line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import repeat
from pathlib import Path

from s2s.errors import DataError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
SPECIALS = (PAD, UNK, BOS, EOS)


class Vocabulary:
    """A fixed list of tokens, the specials first; unknown tokens map to ``UNK_ID``."""

    def __init__(self, tokens: Iterable[str]) -> None:
        """``tokens`` in id order after the specials (specials among them are skipped)."""
        self._tokens = list(SPECIALS)
        self._tokens.extend(t for t in tokens if t not in SPECIALS)
        self._index = {token: i for i, token in enumerate(self._tokens)}
        if len(self._index) != len(self._tokens):
            twice = Counter(self._tokens).most_common(1)[0][0]
            raise ValueError(f"token {twice!r} is in the vocabulary twice")

    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]], max_size: int = 0, min_freq: int = 1) -> Vocabulary:
        """The ``max_size`` most frequent tokens (0: all) seen ``min_freq`` times or more.

        Ties in frequency are broken by the token string, so the result never depends on the
        order of the data.
        """
        counts: Counter[str] = Counter()
        for sequence in sequences:
            counts.update(sequence)
        kept = sorted((t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t))
        return cls(kept[:max_size] if max_size > 0 else kept)

    def save(self, path: str | Path) -> None:
        """One token per line, in id order (specials included)."""
        Path(path).write_text("".join(t + "\n" for t in self._tokens), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        """Read a file written by ``save``."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: vocabulary file not found")
        tokens = path.read_text(encoding="utf-8").split("\n")
        if tokens[-1] == "":
            tokens.pop()
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise DataError(
                f"{path}: not a vocabulary file (it must start with {' '.join(SPECIALS)}, one token per line)"
            )
        return cls(tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def __getitem__(self, token: str) -> int:
        return self._index.get(token, UNK_ID)

    lookup = __getitem__

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._tokens == other._tokens

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"

    @property
    def tokens(self) -> list[str]:
        """All tokens in id order (do not modify)."""
        return self._tokens

    def encode(self, tokens: Iterable[str]) -> list[int]:
        return list(map(self._index.get, tokens, repeat(UNK_ID)))

    def decode(self, ids: Iterable[int], oovs: Sequence[str] = ()) -> list[str]:
        """Tokens of ``ids``; an extended id ``len(self) + k`` is ``oovs[k]``."""
        size = len(self._tokens)
        return [self._tokens[i] if i < size else oovs[i - size] for i in ids]

    def encode_extended(self, src_tokens: Iterable[str]) -> tuple[list[int], list[str]]:
        """Ids where each distinct out-of-vocabulary word gets ``len(self) + k``, k in order of
        first appearance; returns the ids and those words (``oovs``)."""
        oov_ids: dict[str, int] = {}
        ids = []
        for token in src_tokens:
            i = self._index.get(token)
            if i is None:
                i = oov_ids.setdefault(token, len(self._tokens) + len(oov_ids))
            ids.append(i)
        return ids, list(oov_ids)

    def encode_with_oovs(self, tgt_tokens: Iterable[str], oovs: Sequence[str]) -> list[int]:
        """Target ids in the space of ``encode_extended``: an OOV word found in ``oovs`` gets its
        extended id (the model can copy it), any other OOV word ``UNK_ID``."""
        extended = {token: len(self._tokens) + k for k, token in enumerate(oovs)}
        index = self._index
        return [index.get(t, extended.get(t, UNK_ID)) for t in tgt_tokens]
