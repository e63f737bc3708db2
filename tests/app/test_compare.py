"""Agreement measures of two top-k lists, against values computed by hand."""

from __future__ import annotations

import math

import pytest

from app.compare import kendall_tau_union, overlap_at_k, rank_biased_overlap


def test_overlap_counts_shared_items_of_the_top_k() -> None:
    assert overlap_at_k([1, 2, 3], [3, 4, 5], 3) == pytest.approx(1 / 3)
    assert overlap_at_k([1, 2, 3, 9], [3, 2, 1, 8], 3) == 1.0


def test_rbo_is_one_for_identical_and_zero_for_disjoint_lists() -> None:
    assert rank_biased_overlap(list(range(10)), list(range(10))) == pytest.approx(1.0)
    assert rank_biased_overlap([1, 2, 3], [4, 5, 6]) == 0.0


def test_rbo_of_a_swapped_pair() -> None:
    # depth 1: no agreement; depth 2: X=2 -> 2/2 * 0.5^2 = 0.25; RBO_ext = 1 * 0.25 + (0.5/0.5) * 0.25
    assert rank_biased_overlap([1, 2], [2, 1], p=0.5) == pytest.approx(0.5)


def test_rbo_weighs_the_top_ranks_most() -> None:
    top_differs = rank_biased_overlap([1, 2, 3, 4], [9, 2, 3, 4])
    bottom_differs = rank_biased_overlap([1, 2, 3, 4], [1, 2, 3, 9])
    assert bottom_differs > top_differs


def test_kendall_tau_on_the_union() -> None:
    assert kendall_tau_union([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert kendall_tau_union([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # union 1,2,3; ranks a = (1, 2, 3 [missing]), b = (1, 3 [missing], 2): 2 concordant, 1 discordant
    assert kendall_tau_union([1, 2], [1, 3]) == pytest.approx(1 / 3)
    # b ranks 1, 2, 3 tied (missing) after 4: 3 discordant pairs, 3 pairs tied in b only
    assert kendall_tau_union([1, 2, 3], [4]) == pytest.approx(-3 / math.sqrt(3 * 6))


def test_kendall_tau_is_undefined_for_a_single_item() -> None:
    assert kendall_tau_union([7], [7]) is None
