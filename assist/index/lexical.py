"""jieba tokenizer with a KB user dictionary + BM25 (bm25s) build/save/load/search."""

import functools
import json
import logging
import re
from pathlib import Path

import numpy as np

from assist.kb import KB

# SKU codes, order and tracking numbers, model names: kept as one token, lowercased.
CODE = re.compile(r"[A-Za-z]{1,6}-?\d{3,}[A-Za-z0-9-]*|\d{6,}|[A-Za-z]+\d+[A-Za-z0-9]*")
WORD = re.compile(r"[A-Za-z][A-Za-z'’]+|\d+(?:\.\d+)?")
CJK = re.compile(r"[\u3400-\u9fff]")

STOPWORDS = frozenset(
    """的 了 吗 呢 啊 吧 呀 哦 嗯 哈 么 嘛 是 在 有 和 与 及 或 也 就 都 还 又 把 被 让 给 对 从 向 到 为 以 于 之 而 但 并
    我 你 您 他 她 它 我们 你们 他们 这 那 这个 那个 这样 那样 什么 怎么 怎么样 如何 为什么 哪 哪里 哪个 吗 请问 请 一下 一个
    可以 能 能不能 可不可以 是不是 要 想 会 需要 已经 没 没有 不 很 非常 太 好 个 些 下 上 中 里 后 前 时 时候 现在 今天
    a an the of to in on for and or is are was were be been it this that my your i you we me do does did can could would
    please how what why when where which with at by from as not no""".split()
)

_DICT_FILE = "userdict.txt"
_SYNONYMS_FILE = "synonyms.json"


def _bm25s():
    import bm25s

    # bm25s sets its logger to DEBUG when imported; a line per build and load is noise in our logs.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


@functools.cache
def _base_dictionary():
    """jieba's main dictionary, loaded once per process (about a second: every index load needs it)."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    base = jieba.Tokenizer()
    base.initialize()
    return base


def _new_jieba():
    """A jieba tokenizer of its own (user words stay per index) on a copy of the loaded dictionary."""
    import jieba

    base = _base_dictionary()
    tokenizer = jieba.Tokenizer()
    tokenizer.FREQ, tokenizer.total, tokenizer.initialized = dict(base.FREQ), base.total, True
    return tokenizer


class Tokenizer:
    """jieba (search mode) with KB terms added and codes kept whole; one instance per index."""

    def __init__(self, user_words: list[str] | tuple[str, ...] = ()):
        self._jieba = _new_jieba()
        self.user_words = sorted({w.strip() for w in user_words if w and w.strip() and " " not in w.strip()})
        for word in self.user_words:
            self._jieba.add_word(word, freq=20000)

    def tokenize(self, text: str) -> list[str]:
        tokens: list[str] = []
        pos = 0
        for m in CODE.finditer(text):
            tokens += self._words(text[pos : m.start()])
            tokens.append(m.group().lower())
            pos = m.end()
        tokens += self._words(text[pos:])
        return tokens

    def _words(self, text: str) -> list[str]:
        out = []
        for tok in self._jieba.cut_for_search(text):
            tok = tok.strip().lower()
            if not tok or tok in STOPWORDS:
                continue
            if CJK.search(tok) or WORD.fullmatch(tok):
                out.append(tok)
        return out


def user_words(kb: KB) -> list[str]:
    """Terms from the KB that jieba must not split: tags, intent keywords, categories, codes."""
    words = set()
    for article in kb.published:
        words.update(article.tags)
        words.add(article.category)
        words.update(m.group() for m in CODE.finditer(article.body))
    for intent in kb.intents:
        words.update(intent.keywords)
    return sorted(w for w in words if w and len(w) <= 20)


class LexicalIndex:
    """BM25 over tokenized chunk texts; rows align with the chunk list."""

    def __init__(self, bm25, tokenizer: Tokenizer, synonyms: tuple[tuple[str, ...], ...] = ()):
        self._bm25 = bm25
        self.tokenizer = tokenizer
        self.synonyms = tuple(tuple(g) for g in synonyms)
        # term -> the other words of its synonym groups, lower case (as tokens are)
        self._expand: dict[str, tuple[str, ...]] = {}
        for group in self.synonyms:
            words = [w.lower() for w in group]
            for w in words:
                self._expand[w] = tuple(dict.fromkeys((*self._expand.get(w, ()), *(o for o in words if o != w))))
        # One suggest request asks about the same query text three times (article search, template
        # search, matched terms): the last text's terms and scores are kept, replaced whole (thread-safe).
        self._last_terms: tuple[tuple[str, bool], tuple[str, ...]] | None = None
        self._last_scores: tuple[tuple[str, bool], np.ndarray] | None = None

    @classmethod
    def build(cls, texts: list[str], words: list[str], synonyms: tuple[tuple[str, ...], ...] = ()) -> "LexicalIndex":
        bm25s = _bm25s()

        tokenizer = Tokenizer([*words, *(w for g in synonyms for w in g)])  # synonyms tokenize whole
        corpus = [tokenizer.tokenize(t) or ["\x00empty"] for t in texts]
        bm25 = bm25s.BM25()
        bm25.index(corpus, show_progress=False)
        return cls(bm25, tokenizer, synonyms)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._bm25.save(str(folder), show_progress=False)
        (folder / _DICT_FILE).write_text("\n".join(self.tokenizer.user_words), encoding="utf-8")
        (folder / _SYNONYMS_FILE).write_text(json.dumps([list(g) for g in self.synonyms], ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        bm25s = _bm25s()

        words = (folder / _DICT_FILE).read_text(encoding="utf-8").splitlines()
        synonyms_file = folder / _SYNONYMS_FILE
        synonyms = json.loads(synonyms_file.read_text(encoding="utf-8")) if synonyms_file.exists() else []
        bm25 = bm25s.BM25.load(str(folder), mmap=False, show_progress=False)
        return cls(bm25, Tokenizer(words), tuple(tuple(g) for g in synonyms))

    def clear_memo(self) -> None:
        """Forget the last query's terms and scores (benchmarks time a request's first BM25 pass)."""
        self._last_terms = self._last_scores = None

    def __len__(self) -> int:
        return int(self._bm25.scores["num_docs"])

    def query_terms(self, text: str, expand: bool = True) -> list[str]:
        """The query's tokens that occur in the index, unique, in order; with `expand`, each followed by
        the words of its synonym groups (价格 also finds 费用 and 收费)."""
        last = self._last_terms
        if last is not None and last[0] == (text, expand):
            return list(last[1])
        vocab = self._bm25.vocab_dict
        tokens = self.tokenizer.tokenize(text)
        if expand and self._expand:
            tokens = [w for t in tokens for w in (t, *self._expand.get(t, ()))]
        terms = list(dict.fromkeys(t for t in tokens if t in vocab))
        self._last_terms = ((text, expand), tuple(terms))
        return terms

    def scores(self, text: str, expand: bool = True) -> np.ndarray:
        """BM25 score of every row for `text` (zeros when no term is known). Read-only: it may be shared."""
        last = self._last_scores
        if last is not None and last[0] == (text, expand):
            return last[1]
        ids = [self._bm25.vocab_dict[t] for t in self.query_terms(text, expand)]
        if not ids:
            out = np.zeros(len(self), dtype=np.float32)
        else:
            out = np.asarray(self._bm25.get_scores_from_ids(ids), dtype=np.float32)
        out.flags.writeable = False
        self._last_scores = ((text, expand), out)
        return out
