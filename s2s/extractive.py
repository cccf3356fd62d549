"""The extractive summarizer (``model.type: extractive``): SummaRuNNer (Nallapati et al. 2017).

A source is cut into segments (``s2s.segments``: dialogue turns, with their speaker, or
sentences). Each segment is read by a word-level bidirectional RNN and averaged into a vector;
a segment-level bidirectional RNN reads those vectors (and each turn's speaker) in order, giving
h_j. The document is d = tanh(W_d mean_j h_j + b_d), and segment j belongs in the summary with

    P(y_j = 1) = sigmoid( w_c h_j              content
                        + h_j^T W_s d          salience
                        - h_j^T W_r tanh(s_j)  novelty: s_j = sum_{i<j} P(y_i = 1) h_i, the summary so far
                        + p^a_j + p^r_j        absolute and relative position (learned scalars)
                        + p^s_j                the turn's rank among its speaker's turns (speaker_positions)
                        + b )

Training minimizes the binary cross-entropy against labels from the greedy oracle (``s2s.oracle``:
character ROUGE-L F1 against the reference), computed once per corpus when its examples are
encoded (``encode_corpus``), and normalized by segments (``loss_units``). A summary is the best
segments by probability within a budget of ``predict.max_length`` tokens, at most
``predict.max_segments``, in source order (``predict.search: select``; ``segments.pick_segments``).
The summary's tokens are the picked segments' source tokens as extended target ids (every
source word has one), so decoding them to words, ``s2s predict``, validation and the server work
as for any model; each hypothesis also lists every segment with its probability.

``SegmentScorer`` is the selector alone: the bottom-up hybrid (``s2s.hybrid``) reuses it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from s2s.batching import Batch, EncodedExample, collate, encode_corpus
from s2s.embeddings import Embeddings, TokenEmbeddingsConfig, load_pretrained
from s2s.errors import ConfigError
from s2s.model import ForwardOutput, Seq2SeqModel
from s2s.options import Dropout, NonNegativeInt, OptionError, PartOptions, PositiveInt, part
from s2s.oracle import OracleStats, greedy_oracle, soft_labels
from s2s.registry import ENCODERS, MODELS
from s2s.search import Hypothesis, SelectOptions
from s2s.segments import ScoredSegment, SegmentOptions, pick_segments, split_segments
from s2s.vocabulary import PAD_ID, UNK, UNK_ID, Vocabulary

if TYPE_CHECKING:
    from s2s.corpus import TokenizedCorpus

log = logging.getLogger(__name__)

NO_LABEL = -1.0  # the label of a segment of a row without a reference (and of padding): no loss


@dataclass
class SelectorOptions:
    """SummaRuNNer's options: how segments are found, read and scored."""

    segments: SegmentOptions = field(default_factory=SegmentOptions)  # what a segment is
    word_encoder: PartOptions = part(ENCODERS, "gru")  # reads each segment's tokens (s2s config --list encoder)
    segment_encoder: PartOptions = part(ENCODERS, "gru")  # reads the segment vectors in order
    speaker_size: NonNegativeInt = 16  # size of the speaker feature of a turn (0: none)
    positions: PositiveInt = 32  # absolute positions with a weight of their own; later ones share the last
    relative_positions: PositiveInt = 10  # buckets of the relative position j / segments
    speaker_positions: NonNegativeInt = 0  # k-th turn of its speaker, k < this, with a weight of its own (0: none)
    dropout: Dropout = 0.3  # on the segment vectors and states
    oracle_segments: PositiveInt = 3  # the greedy oracle labels at most this many segments of a source
    soft_labels: bool = False  # train on each segment's ROUGE-L F1 over the best one's, not the oracle's 0/1


@dataclass
class ExtractiveOptions(SelectorOptions, PartOptions):
    """``model.*`` of the extractive family."""

    embeddings: TokenEmbeddingsConfig = field(default_factory=TokenEmbeddingsConfig)  # source token embeddings

    def validate(self, root: Any) -> None:
        if root is not None and root.predict.search != "select":
            raise OptionError(
                "type",
                f"extractive picks source segments and writes no tokens: it needs predict.search: select "
                f"(got {root.predict.search!r}; predict.max_length is its budget in tokens)",
            )


# ---------------------------------------------------------------------------------------------
# Data: segments and oracle labels, once per corpus; their tensors, per batch
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class SegmentedExample(EncodedExample):
    """An encoded example with its segments (and their oracle labels, where it has a reference)."""

    segments: array = field(default_factory=lambda: array("i"))  # start, end, speaker of each segment
    labels: array | None = None  # 1 per segment the oracle picked, else 0 (soft_labels: in [0, 1])


@dataclass
class SegmentBatch(Batch):
    """A batch with its examples' segments (``S``: the most segments of an example in it)."""

    segment_spans: Tensor | None = None  # (batch, S, 2) start and end token of each segment
    segment_mask: Tensor | None = None  # (batch, S) bool, True at real segments
    speakers: Tensor | None = None  # (batch, S) speaker of each segment (0: none)
    labels: Tensor | None = None  # (batch, S) float oracle labels, NO_LABEL where none; None when predicting


def encode_segmented(
    corpus: TokenizedCorpus, src_vocab: Vocabulary, tgt_vocab: Vocabulary, options: SelectorOptions
) -> list[SegmentedExample]:
    """The rows of ``corpus`` encoded, segmented and (where they have a reference) labelled by the
    greedy oracle; one log line sums the labels up."""
    targets = corpus.targets if corpus.targets is not None else [None] * len(corpus)
    stats = OracleStats()
    examples = []
    for example, source, target in zip(encode_corpus(corpus, src_vocab, tgt_vocab), corpus.sources, targets):
        spans = split_segments(source or [UNK], options.segments)
        labels, picked, f1 = None, None, 0.0
        if target:
            texts = ["".join(source[s.start : s.end]) for s in spans]
            picked, f1 = greedy_oracle(texts, "".join(target), options.oracle_segments)
            labels = array("b", (int(i in picked) for i in range(len(spans))))
            if options.soft_labels:
                labels = array("f", soft_labels(texts, "".join(target)))
        stats.add(len(spans), picked, f1)
        fields = {f.name: getattr(example, f.name) for f in dataclasses.fields(EncodedExample)}
        examples.append(SegmentedExample(**fields, segments=array("i", [v for s in spans for v in s]), labels=labels))
    if corpus.targets is not None:
        log.info(stats.describe(corpus.name))
    return examples


def collate_segmented(examples: Sequence[SegmentedExample], indices: Sequence[int]) -> SegmentBatch:
    """The batch of ``examples[i] for i in indices`` with its segments' tensors."""
    batch = collate(examples, indices)
    chosen = [examples[i] for i in indices]
    counts = torch.tensor([len(e.segments) // 3 for e in chosen])  # (batch,)
    mask = torch.arange(int(counts.max())) < counts.unsqueeze(1)  # (batch, S)
    flat = array("i")
    for e in chosen:
        flat.extend(e.segments)
    triples = torch.frombuffer(flat, dtype=torch.int32).long().view(-1, 3)  # (segments, 3)
    spans = torch.zeros(*mask.shape, 2, dtype=torch.long)
    spans[mask] = triples[:, :2]
    speakers = torch.zeros(mask.shape, dtype=torch.long)
    speakers[mask] = triples[:, 2]
    labels = None
    if any(e.labels is not None for e in chosen):
        labels = torch.full(mask.shape, NO_LABEL)
        for row, e in enumerate(chosen):
            if e.labels is not None:
                labels[row, : len(e.labels)] = torch.tensor(e.labels.tolist(), dtype=torch.float)
    values = {f.name: getattr(batch, f.name) for f in dataclasses.fields(Batch)}
    return SegmentBatch(**values, segment_spans=spans, segment_mask=mask, speakers=speakers, labels=labels)


# ---------------------------------------------------------------------------------------------
# The selector
# ---------------------------------------------------------------------------------------------


class SegmentScorer(nn.Module):
    """SummaRuNNer's two RNNs and scorer (the module docstring): a batch -> a logit per segment."""

    def __init__(self, cfg: SelectorOptions, embeddings: Embeddings) -> None:
        super().__init__()
        self.embeddings = embeddings
        self.max_tokens = cfg.segments.max_tokens
        self.words = ENCODERS.build(cfg.word_encoder, input_size=embeddings.size)
        self.speakers = nn.Embedding(len(cfg.segments.speakers) + 1, cfg.speaker_size) if cfg.speaker_size else None
        self.segments = ENCODERS.build(cfg.segment_encoder, input_size=self.words.output_size + cfg.speaker_size)
        size = self.segments.output_size
        self.dropout = nn.Dropout(cfg.dropout)
        self.document = nn.Linear(size, size)
        self.content = nn.Linear(size, 1)  # its bias is the scorer's b
        self.salience = nn.Linear(size, size, bias=False)
        self.novelty = nn.Linear(size, size, bias=False)
        self.absolute = nn.Embedding(cfg.positions, 1)
        self.relative = nn.Embedding(cfg.relative_positions, 1)
        self.speaker_positions = cfg.speaker_positions
        self.speaker_rank = None  # the weight of "the k-th turn of its speaker" (the first technician turn: the lead)
        if cfg.speaker_positions:
            self.speaker_rank = nn.Embedding((len(cfg.segments.speakers) + 1) * cfg.speaker_positions, 1)
            nn.init.zeros_(self.speaker_rank.weight)
        nn.init.zeros_(self.absolute.weight)  # positions start neutral: no segment is favoured by chance
        nn.init.zeros_(self.relative.weight)

    def forward(self, batch: SegmentBatch) -> Tensor:
        """Logits (batch, S) of P(segment in the summary); padding segments get finite junk."""
        mask = batch.segment_mask  # (batch, S)
        counts = mask.sum(1)  # (batch,)
        x = self.segment_vectors(batch)  # (batch, S, words)
        if self.speakers is not None:
            x = torch.cat([x, self.speakers(batch.speakers)], dim=-1)
        h, _ = self.segments(self.dropout(x), counts.cpu())  # (batch, S, size), 0 at padding
        h = self.dropout(h)
        document = torch.tanh(self.document(h.sum(1) / counts.unsqueeze(1)))  # (batch, size)
        index = torch.arange(mask.size(1), device=mask.device)  # (S,)
        relative = torch.div(index * self.relative.num_embeddings, counts.unsqueeze(1), rounding_mode="floor")
        static = (
            self.content(h).squeeze(-1)
            + (self.salience(h) * document.unsqueeze(1)).sum(-1)
            + self.absolute(index.clamp(max=self.absolute.num_embeddings - 1)).squeeze(-1)
            + self.relative(relative.clamp(max=self.relative.num_embeddings - 1)).squeeze(-1)
        )  # (batch, S)
        if self.speaker_rank is not None:
            static = static + self.speaker_rank(self.speaker_rank_index(batch)).squeeze(-1)
        novelty = self.novelty(h)  # (batch, S, size)
        summary = h.new_zeros(h.size(0), h.size(2))  # (batch, size) s_j
        logits = []
        for j in range(mask.size(1)):  # the recurrence: s_j depends on the probabilities before j
            logit = static[:, j] - (novelty[:, j] * torch.tanh(summary)).sum(-1)  # (batch,)
            summary = summary + torch.sigmoid(logit).unsqueeze(1) * h[:, j]  # h is 0 at padding
            logits.append(logit)
        return torch.stack(logits, dim=1)

    def speaker_rank_index(self, batch: SegmentBatch) -> Tensor:
        """(batch, S) each segment's row of ``speaker_rank``: its speaker and its rank among that
        speaker's segments (0: the speaker's first; later ones share the last row)."""
        speakers = self.speaker_rank.num_embeddings // self.speaker_positions
        onehot = F.one_hot(batch.speakers, speakers) * batch.segment_mask.unsqueeze(-1)  # (batch, S, speakers)
        rank = (onehot.cumsum(1) * onehot).sum(-1) - 1  # (batch, S), -1 at padding
        return batch.speakers * self.speaker_positions + rank.clamp(0, self.speaker_positions - 1)

    def segment_vectors(self, batch: SegmentBatch) -> Tensor:
        """(batch, S, words): each real segment's word-RNN outputs averaged over its first
        ``max_tokens`` tokens; zeros for padding segments. Only real segments are run."""
        spans, mask = batch.segment_spans, batch.segment_mask
        rows, cols = mask.nonzero(as_tuple=True)  # (N,) each real segment's example and position
        starts = spans[rows, cols, 0]  # (N,)
        lengths = (spans[rows, cols, 1] - starts).clamp(max=self.max_tokens)  # (N,)
        offsets = torch.arange(int(lengths.max()), device=starts.device)  # (L,)
        token_mask = offsets < lengths.unsqueeze(1)  # (N, L)
        positions = (starts.unsqueeze(1) + offsets).masked_fill(~token_mask, 0)  # (N, L)
        ids = batch.src[rows.unsqueeze(1), positions].masked_fill(~token_mask, PAD_ID)  # (N, L)
        outputs, _ = self.words(self.embeddings(ids), lengths.cpu())  # (N, L, words), 0 at padding
        pooled = outputs.sum(1) / lengths.unsqueeze(1)  # (N, words)
        vectors = pooled.new_zeros(*mask.shape, pooled.size(1))
        vectors[rows, cols] = pooled
        return vectors


def segment_loss(logits: Tensor, labels: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """(batch, S) binary cross-entropy of logits against labels, 0 where the label is NO_LABEL.
    Label smoothing moves the targets 0/1 to e/2 and 1 - e/2."""
    known = labels != NO_LABEL
    target = labels.clamp(min=0) * (1 - label_smoothing) + label_smoothing / 2
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return loss.masked_fill(~known, 0.0)


def labelled_segments(batch: SegmentBatch) -> int:
    """Segments with an oracle label in ``batch`` (read on the CPU)."""
    return int((batch.labels != NO_LABEL).sum())


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


class Extractor(Seq2SeqModel):
    """Picks source segments (the module docstring); ``writes_tokens`` is False."""

    copies = True  # its outputs are source tokens as extended target ids
    writes_tokens = False

    def __init__(self, cfg: ExtractiveOptions, src_vocab_size: int, tgt_vocab_size: int) -> None:
        super().__init__()
        self.options = cfg
        self.embeddings = Embeddings(src_vocab_size, cfg.embeddings.size, cfg.embeddings.dropout, PAD_ID)
        self.scorer = SegmentScorer(cfg, self.embeddings)
        self.tgt_vocab_size = tgt_vocab_size

    def encode_corpus(
        self, corpus: TokenizedCorpus, src_vocab: Vocabulary, tgt_vocab: Vocabulary
    ) -> list[SegmentedExample]:
        return encode_segmented(corpus, src_vocab, tgt_vocab, self.options)

    def collate(self, examples: Sequence[EncodedExample], indices: Sequence[int]) -> SegmentBatch:
        return collate_segmented(examples, indices)

    def loss_units(self, batch: SegmentBatch) -> int:
        return labelled_segments(batch)

    def forward(
        self, batch: SegmentBatch, *, coverage: bool = False, label_smoothing: float = 0.0, sampling: float = 0.0
    ) -> ForwardOutput:
        """Per-segment losses (batch, S) against the oracle labels (``sampling``: no decoder, ignored)."""
        return ForwardOutput(segment_loss(self.scorer(batch), batch.labels, label_smoothing), None, None, None)

    def encode(self, batch: Batch, *, coverage: bool = False) -> NoReturn:
        _no_token_decoding()

    def decode_step(self, prev_tokens: Tensor, memory: Any, state: Any) -> NoReturn:
        _no_token_decoding()

    def summarize(
        self, batch: SegmentBatch, options: SelectOptions, return_attention: bool = False
    ) -> list[list[Hypothesis]]:
        """The best segments of each example within ``options.max_length`` tokens (see the module
        docstring); the tokens' attention, where asked for, is one-hot on the source token each is."""
        return pick_hypotheses(self.segment_probs(batch), batch, options, return_attention)

    def segment_probs(self, batch: SegmentBatch) -> Tensor:
        """(batch, S) P(segment in the summary)."""
        return torch.sigmoid(self.scorer(batch))


class SegmentEnsemble(Seq2SeqModel):
    """Extractive models picking with the mean of their segment probabilities (``s2s predict
    --checkpoint a.pt b.pt``); they must cut sources into segments alike. The first one encodes
    and collates the examples for all."""

    copies = True
    writes_tokens = False

    def __init__(self, models: Sequence[Seq2SeqModel]) -> None:
        super().__init__()
        if not models or not all(isinstance(model, Extractor) for model in models):
            raise ConfigError("ensemble: extractive models ensemble only with extractive models")
        first = models[0].options.segments
        if any(model.options.segments != first for model in models):
            raise ConfigError("ensemble: the extractive members cut sources into segments differently (model.segments)")
        self.members = nn.ModuleList(models)
        self.tgt_vocab_size = models[0].tgt_vocab_size

    def encode_corpus(
        self, corpus: TokenizedCorpus, src_vocab: Vocabulary, tgt_vocab: Vocabulary
    ) -> list[SegmentedExample]:
        return self.members[0].encode_corpus(corpus, src_vocab, tgt_vocab)

    def collate(self, examples: Sequence[EncodedExample], indices: Sequence[int]) -> SegmentBatch:
        return collate_segmented(examples, indices)

    def loss_units(self, batch: SegmentBatch) -> int:
        return labelled_segments(batch)

    def segment_probs(self, batch: SegmentBatch) -> Tensor:
        """(batch, S) the members' mean P(segment in the summary)."""
        return torch.stack([model.segment_probs(batch) for model in self.members]).mean(0)

    def summarize(
        self, batch: SegmentBatch, options: SelectOptions, return_attention: bool = False
    ) -> list[list[Hypothesis]]:
        """As ``Extractor.summarize``, with the members' mean probabilities."""
        return pick_hypotheses(self.segment_probs(batch), batch, options, return_attention)


def pick_hypotheses(
    segment_probs: Tensor, batch: SegmentBatch, options: SelectOptions, return_attention: bool = False
) -> list[list[Hypothesis]]:
    """segment_probs (batch, S) -> one hypothesis per example: its best segments within the budget."""
    probs = segment_probs.tolist()  # (batch, S)
    spans, counts = batch.segment_spans.tolist(), batch.segment_mask.sum(1).tolist()
    results = []
    for row, (p, span, n) in enumerate(zip(probs, spans, counts)):
        p, span, ids = p[:n], span[:n], batch.src_ext[row].tolist()
        lengths = [end - start for start, end in span]
        taken = pick_segments(
            p, lengths, max_segments=options.max_segments, min_score=options.min_score, budget=options.max_length
        )
        # an empty source was encoded as one <unk>: it gives an empty summary
        positions = [pos for i, k in taken for pos in range(span[i][0], span[i][0] + k) if ids[pos] != UNK_ID]
        log_prob = sum(math.log(max(p[i], 1e-10)) for i, _ in taken)
        attention = None
        if return_attention:  # (len(tokens), src_len)
            attention = F.one_hot(torch.tensor(positions, dtype=torch.long), len(ids)).float()
        picked = {i for i, _ in taken}
        segments = [ScoredSegment(s, e, score, i in picked) for i, ((s, e), score) in enumerate(zip(span, p))]
        hypothesis = Hypothesis([ids[pos] for pos in positions], log_prob, log_prob, attention, segments=segments)
        results.append([hypothesis])
    return results


def _no_token_decoding() -> NoReturn:
    raise ConfigError(
        "model.type extractive picks source segments and has no token-by-token decoding: "
        "use predict.search: select (--search select), not greedy or beam"
    )


@MODELS.register("extractive", options=ExtractiveOptions)
def extractive_model(cfg: ExtractiveOptions, *, src_tokens: list[str], tgt_tokens: list[str]) -> Extractor:
    """SummaRuNNer: picks the source's best segments (turns, sentences) within a length budget."""
    model = Extractor(cfg, len(src_tokens), len(tgt_tokens))
    if cfg.embeddings.pretrained:
        load_pretrained(model.embeddings, cfg.embeddings.pretrained, src_tokens, cfg.embeddings.freeze)
    return model
