"""A/B experiments: arms as setting overrides or template variants, sessions assigned by a stable hash.

`ASSIST_EXPERIMENTS` is a YAML file path or inline JSON:

    name: boost-2026-12            # part of the hash: a new name reshuffles the sessions
    arms:
      - name: control              # the first arm is the baseline the review compares with
      - name: strong-boost
        suggest: {intent_boost: 0.3}
      - name: short-refund-reply
        templates: {tpl-refund-timing: tpl-refund-timing-short}   # shown instead, in this arm only
        weight: 0.5                # share of sessions relative to the others (default 1)

A session's arm is the same in every request, process and replica (sha256 of name and session id);
requests without a session id take no part (no arm).
"""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from assist.config import SuggestSettings
from assist.errors import AssistError


@dataclass(frozen=True)
class Arm:
    name: str
    weight: float = 1.0
    suggest: dict = field(default_factory=dict)  # SuggestSettings overrides
    templates: dict = field(default_factory=dict)  # template id -> the variant shown instead


@dataclass(frozen=True)
class Experiment:
    name: str
    arms: tuple[Arm, ...]

    @property
    def variants(self) -> frozenset[str]:
        """Templates that exist only as some arm's variant: no other arm shows them."""
        return frozenset(v for a in self.arms for v in a.templates.values())

    def assign(self, session_id: str | None) -> Arm | None:
        if not session_id:
            return None
        point = int(hashlib.sha256(f"{self.name}\x1f{session_id}".encode()).hexdigest()[:15], 16) / 16**15
        total = sum(a.weight for a in self.arms)
        edge = 0.0
        for arm in self.arms:
            edge += arm.weight / total
            if point < edge:
                return arm
        return self.arms[-1]


def load_experiment(text: str, templates: set[str] | None = None) -> Experiment | None:
    """The experiment a setting describes (None when it is empty); AssistError says what is wrong."""
    text = text.strip()
    if not text:
        return None
    where = "ASSIST_EXPERIMENTS"
    if not text.startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise AssistError(f"{where}: no file {text} (give a YAML file or inline JSON)")
        where, text = str(path), path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise AssistError(f"{where}: not valid YAML / JSON ({exc})") from None
    if not isinstance(data, dict) or not str(data.get("name") or "").strip():
        raise AssistError(f"{where}: an experiment needs a 'name' and 'arms'")
    raw = data.get("arms")
    if not isinstance(raw, list) or len(raw) < 2:
        raise AssistError(f"{where}: an experiment needs at least two arms")
    arms, names = [], set()
    known = set(SuggestSettings.model_fields)
    for n, item in enumerate(raw, 1):
        if not isinstance(item, dict) or not str(item.get("name") or "").strip():
            raise AssistError(f"{where}: arm {n} needs a 'name'")
        name = str(item["name"]).strip()
        if name in names:
            raise AssistError(f"{where}: two arms are called {name!r}")
        names.add(name)
        overrides = item.get("suggest") or {}
        if not isinstance(overrides, dict) or set(overrides) - known:
            bad = ", ".join(sorted(set(overrides) - known)) if isinstance(overrides, dict) else "not a mapping"
            raise AssistError(f"{where}: arm {name!r}: unknown suggest settings ({bad}); use {', '.join(sorted(known))}")
        try:
            SuggestSettings.model_validate(overrides)
        except ValueError as exc:
            raise AssistError(f"{where}: arm {name!r}: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None
        swaps = item.get("templates") or {}
        if not isinstance(swaps, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in swaps.items()):
            raise AssistError(f"{where}: arm {name!r}: 'templates' maps a template id to its variant's id")
        if templates is not None:
            for tid in [*swaps, *swaps.values()]:
                if tid not in templates:
                    raise AssistError(f"{where}: arm {name!r}: no template {tid!r} in the index")
        weight = item.get("weight", 1.0)
        if not isinstance(weight, (int, float)) or weight <= 0:
            raise AssistError(f"{where}: arm {name!r}: weight must be a positive number")
        arms.append(Arm(name, float(weight), dict(overrides), dict(swaps)))
    return Experiment(str(data["name"]).strip(), tuple(arms))
