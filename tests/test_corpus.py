"""Every grader discriminates: reference full marks, stub zero, each wrong solution caught, each alternative full marks."""

from __future__ import annotations

import pytest

from tests import helpers

TOPICS = helpers.topic_names()


@pytest.mark.parametrize("topic", TOPICS)
def test_reference_gets_full_marks(topic):
    report = helpers.grade(topic, "reference")
    assert report["tests"], "the grader ran no test"
    assert report["score"] == report["max_score"], helpers.summary(report)


@pytest.mark.parametrize("topic", TOPICS)
def test_pristine_stub_scores_zero(topic, tmp_path):
    from grader import course, stubs

    t = course.topic(topic)
    stub = tmp_path / f"{topic}.py"
    stub.write_text(stubs.make_stub(t, t.reference.read_text()))
    report = helpers.grade(topic, stub)
    assert report["score"] == 0, [x["id"] for x in report["tests"] if x["points"]]
    assert all(x["outcome"] == "error" and "not implemented yet" in x["message"] for x in report["tests"])


MUTANTS = [(t, m) for t in TOPICS for m in helpers.mutants(t)]
WRONG = [(t, w) for t in TOPICS for w in helpers.wrong_files(t)]
ALTS = [(t, p) for t in TOPICS for p in helpers.alternatives(t)]


def assert_caught(report: dict, expect: str | None) -> None:
    assert report["score"] < report["max_score"], "this wrong solution got full marks"
    if expect:
        messages = [t["message"] for t in helpers.failures(report)]
        assert any(expect in m for m in messages), f"no failure says {expect!r}:\n" + helpers.summary(report)


@pytest.mark.parametrize("topic,mutant", MUTANTS, ids=[f"{t}-{m.name}" for t, m in MUTANTS])
def test_mutant_loses_points_with_the_expected_message(topic, mutant, tmp_path):
    from grader import course

    path = tmp_path / f"{topic}.py"
    path.write_text(mutant.source(course.topic(topic).reference.read_text()))
    assert_caught(helpers.grade(topic, path), mutant.expect)


@pytest.mark.parametrize("topic,wrong", WRONG, ids=[f"{t}-{w.name}" for t, w in WRONG])
def test_wrong_file_loses_points_with_the_expected_message(topic, wrong):
    assert_caught(helpers.grade(topic, wrong.path), wrong.expect)


@pytest.mark.parametrize("topic,path", ALTS, ids=[f"{t}-{p.stem}" for t, p in ALTS])
def test_alternative_correct_solution_gets_full_marks(topic, path):
    report = helpers.grade(topic, path)
    assert report["score"] == report["max_score"], helpers.summary(report)


@pytest.mark.parametrize("topic", TOPICS)
def test_corpus_is_big_enough(topic):
    n_wrong = len(helpers.mutants(topic)) + len(helpers.wrong_files(topic))
    assert n_wrong >= 8, f"{topic}: {n_wrong} wrong solutions in tests/corpus/{topic}/, at least 8 wanted"
    assert len(helpers.alternatives(topic)) >= 2, f"{topic}: at least 2 alt_*.py correct alternatives wanted"


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(not _has_cuda(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("topic", TOPICS)
def test_reference_gets_full_marks_on_cuda(topic):
    report = helpers.grade(topic, "reference", device="cuda")
    assert report["device"] == "cuda"
    assert report["score"] == report["max_score"], helpers.summary(report)
