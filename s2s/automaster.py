"""The AutoMaster adapter (汽车大师 问答摘要与推理): its CSV, dialogue cleaning and lead baseline.

Rows are ``QID,Brand,Model,Question,Dialogue[,Report]``. A dialogue is turns separated by ``|``,
each prefixed ``技师说：`` (technician) or ``车主说：`` (car owner), with placeholders for voice and
picture messages. This module registers the ``automaster`` reader: the CSV reader with the
Dialogue field cleaned (``data.clean``), a raw string cleaned as a dialogue, the first
technician turn as the lead baseline, the turns as what the oracle baseline picks from,
predictions written as ``QID,Prediction``; and ``automaster_jsonl``, the same rows as JSON
lines. Nothing generic imports it; the reader registry loads it with the other built-in readers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from s2s.readers import CsvReader, Example, FieldsOptions, FieldsReader, JsonlReader
from s2s.registry import READERS

DIALOGUE_FIELD = "Dialogue"  # the field that cleaning applies to
TECHNICIAN, OWNER = "技师说：", "车主说："
PLACEHOLDERS = ("[语音]", "[图片]", "[视频]")  # voice, picture, video messages


@dataclass
class CleanConfig:
    """How AutoMaster dialogues are cleaned before tokenization."""

    strip_prefixes: bool = False  # drop the `技师说：` / `车主说：` turn prefixes
    drop_placeholders: bool = True  # drop `[语音]` / `[图片]`, and turns left empty by it
    turn_separator: str = "|"  # placed between dialogue turns (the raw data uses `|`)
    technician_first: bool = False  # technician turns first, then the owner's


@dataclass
class AutoMasterOptions(FieldsOptions):
    clean: CleanConfig = field(default_factory=CleanConfig)  # how the Dialogue field is cleaned


class AutoMasterRows(FieldsReader):
    """AutoMaster rows in any layout of named fields: the Dialogue field cleaned by ``data.clean``."""

    options: AutoMasterOptions

    def clean_field(self, name: str, value: str) -> str:
        return clean_dialogue(value, self.options.clean) if name == DIALOGUE_FIELD else value

    def source_text(self, item: str | Mapping[str, str]) -> str:
        """A row of fields is joined and cleaned as the training rows were; a plain string is
        cleaned as a dialogue."""
        if isinstance(item, str):
            return clean_dialogue(item, self.options.clean)
        return super().source_text(item)

    def lead(self, example: Example) -> str:
        """The first technician turn with words in it ("" when there is none)."""
        if example.raw is None or DIALOGUE_FIELD not in example.raw:
            return super().lead(example)
        return next((body for who, body in self._turns(example.raw[DIALOGUE_FIELD]) if who == TECHNICIAN), "")

    def segments(self, example: Example) -> list[str]:
        """The dialogue's turns with words in them, of either speaker, without their prefixes."""
        if example.raw is None or DIALOGUE_FIELD not in example.raw:
            return super().segments(example)
        return [body for _, body in self._turns(example.raw[DIALOGUE_FIELD])]

    @staticmethod
    def _turns(dialogue: str) -> Iterator[tuple[str, str]]:
        """(speaker, text) of the turns of ``dialogue`` with something left once placeholders are dropped."""
        for who, body in split_turns(dialogue):
            body = drop_placeholders(body).strip()
            if body:
                yield who, body


@READERS.register("automaster", options=AutoMasterOptions)
class AutoMasterReader(AutoMasterRows, CsvReader):
    """The AutoMaster CSV, its Dialogue field cleaned by ``data.clean``."""


@READERS.register("automaster_jsonl", options=AutoMasterOptions)
class AutoMasterJsonlReader(AutoMasterRows, JsonlReader):
    """AutoMaster rows as JSON lines, the Dialogue field cleaned by ``data.clean``."""


def split_turns(dialogue: str) -> list[tuple[str, str]]:
    """``"技师说：a|车主说：b"`` -> ``[("技师说：", "a"), ("车主说：", "b")]`` (speaker "" if none)."""
    turns = []
    for turn in dialogue.split("|"):
        speaker = turn[:4] if turn.startswith((TECHNICIAN, OWNER)) else ""
        turns.append((speaker, turn[len(speaker) :]))
    return turns


def drop_placeholders(text: str) -> str:
    for placeholder in PLACEHOLDERS:
        text = text.replace(placeholder, "")
    return text


def clean_dialogue(dialogue: str, cfg: CleanConfig) -> str:
    """Apply ``cfg`` to one dialogue (``|``-separated, prefixed turns)."""
    turns = split_turns(dialogue)
    if cfg.drop_placeholders:
        turns = [(who, drop_placeholders(body)) for who, body in turns]
        turns = [(who, body) for who, body in turns if body.strip()]
    if cfg.technician_first:
        turns.sort(key=lambda turn: turn[0] != TECHNICIAN)  # stable: order kept within each side
    return cfg.turn_separator.join(body if cfg.strip_prefixes else who + body for who, body in turns)
