"""Tokenizer and vocabulary of the content encoder (no torch needed)."""

import subprocess
import sys

import numpy as np
import pytest

from reco.dataset import Catalog
from reco.text import PADDING_ID, UNKNOWN_ID, EmptyTextError, Vocabulary, tokenize


def _catalog():
    return Catalog(
        item_ids=np.array(["1", "2", "3"], dtype=object),
        titles=np.array(["Toy Story (1995)", "Heat (1995)", "Toy Soldiers"], object),
        bodies=np.array(["", "a heist story", ""], dtype=object),
        categories=np.array(["Animation|Comedy", "Action|Crime", "Comedy"], object),
    )


def test_tokenize_reads_genres_year_decade_and_words():
    tokens = tokenize("Toy Story (1995)", "Two toys", "Animation|Children's")
    assert tokens == [
        "genre:animation",
        "genre:children s",
        "year:1995",
        "decade:1990s",
        "toy",
        "story",
        "two",
        "toys",
    ]


def test_title_without_year_has_no_year_token():
    assert tokenize("Untitled", "", "") == ["untitled"]


def test_vocabulary_keeps_shared_tokens_and_pads_with_zero():
    vocabulary = Vocabulary.build(_catalog(), min_items=2)
    assert {"toy", "story", "year:1995", "genre:comedy"} <= set(vocabulary.tokens)
    assert "heat" not in vocabulary.ids  # one item only: unknown
    tokens = vocabulary.encode(["Toy Story (1995)", "Heat (1995)"], ["", ""], ["", ""])
    assert tokens.dtype == np.int64
    heat = [vocabulary.ids["year:1995"], vocabulary.ids["decade:1990s"], UNKNOWN_ID]
    assert tokens[1].tolist() == heat + [PADDING_ID]
    assert tokens.shape == (2, 4)
    assert (tokens[0] != PADDING_ID).all()


def test_encode_cuts_at_max_tokens_and_fixed_length():
    vocabulary = Vocabulary.build(_catalog(), min_items=1, max_tokens=3)
    tokens = vocabulary.encode(["Toy Story (1995)"], [""], ["Comedy"], length=5)
    assert tokens.shape == (1, 5)
    assert tokens[0, 3:].tolist() == [PADDING_ID, PADDING_ID]


def test_empty_text_raises_naming_the_item_and_rows_are_reported():
    vocabulary = Vocabulary.build(_catalog(), min_items=2)
    titles, bodies, categories = ["Toy", "Zzyzx", ""], ["", "", ""], ["", "", ""]
    assert vocabulary.empty_rows(titles, bodies, categories).tolist() == [1, 2]
    with pytest.raises(EmptyTextError, match="item 42"):
        vocabulary.encode(titles, bodies, categories, item_ids=["7", "42", "43"])


def test_json_round_trip():
    vocabulary = Vocabulary.build(_catalog(), min_items=1, max_tokens=12)
    again = Vocabulary.from_json(vocabulary.to_json())
    assert again.tokens == vocabulary.tokens
    assert again.max_tokens == 12
    text = (["Heat (1995)"], ["a heist"], ["Crime"])
    assert (again.encode(*text) == vocabulary.encode(*text)).all()


def test_text_module_does_not_import_torch():
    code = "import sys, reco.text; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
