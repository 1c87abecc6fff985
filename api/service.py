"""What the API serves: one loaded index version with its Suggester, swapped whole on reload.

A request takes `service.current` once and uses that snapshot to the end, so it finishes on the version
it started with and its response names one consistent `index_version`. Reload builds the next snapshot
off to the side and replaces the reference in one assignment; a load that fails leaves the old one.
"""

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass

from assist.config import Settings
from assist.errors import IndexNotFound
from assist.experiments import Experiment, load_experiment
from assist.helpcentre import HelpCentre
from assist.index.embed import Embedder
from assist.index.search import Index
from assist.index.store import current_version, open_index
from assist.kb import Article, ReplyTemplate
from assist.suggest.pipeline import Suggester

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    suggester: Suggester
    articles: dict[str, Article]
    templates: dict[str, ReplyTemplate]
    help: HelpCentre  # what customers may see of this version
    experiment: Experiment | None = None
    arms: dict[str, Suggester] | None = None  # arm name -> its suggester (settings and template variants applied)
    since: float = 0.0  # time.time() when this process began serving it

    def suggester_for(self, session_id: str | None) -> tuple[Suggester, str | None]:
        """The suggester of the session's experiment arm (and the arm's name), else the plain one."""
        arm = self.experiment.assign(session_id) if self.experiment else None
        return (self.suggester, None) if arm is None else (self.arms[arm.name], arm.name)

    @property
    def index(self) -> Index:
        return self.suggester.index

    @property
    def version(self) -> str:
        return self.suggester.index.version


@dataclass(frozen=True)
class ReloadResult:
    previous: str | None
    current: str
    changed: bool
    seconds: float


class Service:
    def __init__(self, settings: Settings, embedder: Embedder):
        self.settings = settings
        self.embedder = embedder
        self.current: Loaded | None = None
        self._reload_lock = threading.Lock()

    @property
    def version(self) -> str | None:
        loaded = self.current
        return loaded.version if loaded else None

    def require(self) -> Loaded:
        """The snapshot to serve a request from; IndexNotFound (503) while none is loaded."""
        loaded = self.current
        if loaded is None:
            raise IndexNotFound(f"no index loaded from {self.settings.index_dir}: run `assist index build`, then POST /v1/admin/reload")
        return loaded

    def _load(self) -> Loaded:
        index = open_index(self.settings, embedder=self.embedder)
        suggester = Suggester(index, self.settings.suggest)
        # One request before any real one: lazy set-up (tokenizers, model buffers) is paid off to the side.
        suggester.suggest([{"role": "customer", "text": "你好，请问退款多久能到账？"}])
        experiment = load_experiment(self.settings.experiments, {t.id for t in index.kb.templates})
        arms = None
        if experiment is not None:
            arms = {a.name: suggester.with_settings(**a.suggest).with_variants(a.templates, experiment.variants) for a in experiment.arms}
            suggester = suggester.with_variants({}, experiment.variants)  # outside the experiment, no variant either
        return Loaded(
            suggester,
            {a.id: a for a in index.kb.published},
            {t.id: t for t in index.kb.templates},
            HelpCentre(suggester, index.path / "assets", self.settings.public_results, self.settings.public_result_margin),
            experiment,
            arms,
        )

    def reload(self) -> ReloadResult:
        """Load CURRENT fully and swap it in; raises (and keeps serving the old one) when the load fails."""
        with self._reload_lock:  # one load at a time: two would race to swap
            start = time.perf_counter()
            previous = self.version
            if previous is not None and current_version(self.settings.index_dir) == previous:
                return ReloadResult(previous, previous, False, 0.0)  # versions are immutable: nothing to do
            fresh = dataclasses.replace(self._load(), since=time.time())
            self.current = fresh
            seconds = round(time.perf_counter() - start, 3)
            log.info("serving index %s (was %s), loaded in %.2fs", fresh.version, previous, seconds)
            return ReloadResult(previous, fresh.version, previous != fresh.version, seconds)
