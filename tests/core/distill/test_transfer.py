"""Item-embedding transfer: shapes, and the projected teacher table is what the student starts from."""

from __future__ import annotations

import pytest
import torch

from core.distill.transfer import pca_project, projected_item_table, transfer_item_embeddings
from core.models.student import Student
from tests.core.models.factories import ITEMS, make_model, student_config


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory):
    torch.manual_seed(0)
    return make_model("teacher", tmp_path_factory.mktemp("text"))


def test_pca_keeps_the_leading_axes() -> None:
    torch.manual_seed(0)
    signal = torch.randn(200, 2) @ torch.randn(2, 10) * 5
    data = signal + 0.01 * torch.randn(200, 10)
    projected, kept = pca_project(data, 2)
    assert projected.shape == (200, 2) and kept > 0.99
    # Distances between rows survive the projection (the lost axes hold only noise).
    torch.testing.assert_close(torch.cdist(projected, projected), torch.cdist(data, data), atol=0.1, rtol=0.01)
    with pytest.raises(ValueError):
        pca_project(data, 11)


def test_the_student_starts_from_the_projected_teacher_table(teacher) -> None:
    torch.manual_seed(1)
    student = Student(student_config(), ITEMS)
    before = student.item_embeddings().detach().clone()
    norm = float(before[1:].norm(dim=1).mean())
    kept = transfer_item_embeddings(teacher, student)
    after = student.item_embeddings().detach()
    expected, expected_kept = projected_item_table(teacher, student.config.hidden, norm)
    assert after.shape == (ITEMS + 1, student.config.hidden) == expected.shape
    torch.testing.assert_close(after, expected)
    assert kept == pytest.approx(expected_kept) and 0 < kept <= 1
    assert torch.all(after[0] == 0)  # padding
    assert float(after[1:].norm(dim=1).mean()) == pytest.approx(norm, rel=1e-5)
    # Items the teacher sees as alike stay alike for the student.
    teacher_sim = torch.nn.functional.cosine_similarity(
        teacher.item_embeddings()[1:, None], teacher.item_embeddings()[None, 1:], dim=-1
    )
    student_sim = torch.nn.functional.cosine_similarity(after[1:, None], after[None, 1:], dim=-1)
    assert torch.corrcoef(torch.stack([teacher_sim.flatten(), student_sim.flatten()]))[0, 1] > 0.5
    # Same contract and size: it is still a plain student.
    assert student.parameter_counts() == Student(student_config(), ITEMS).parameter_counts()


def test_catalogues_must_match(teacher) -> None:
    with pytest.raises(ValueError, match="items"):
        transfer_item_embeddings(teacher, Student(student_config(), ITEMS + 1))


def test_recipes_build_the_transferred_student(teacher) -> None:
    from core.training.recipes import new_student

    torch.manual_seed(3)
    plain = new_student(student_config(), ITEMS)
    torch.manual_seed(3)
    transferred = new_student(student_config(), ITEMS, init_from=teacher)
    norm = float(plain.item_embeddings().detach()[1:].norm(dim=1).mean())
    expected, _ = projected_item_table(teacher, plain.config.hidden, norm)
    torch.testing.assert_close(transferred.item_embeddings().detach(), expected)
    # Everything but the item table is the plain student's initialisation.
    for (name, a), (_, b) in zip(plain.state_dict().items(), transferred.state_dict().items(), strict=True):
        if name != "item_embedding.weight":
            assert torch.equal(a, b), name
