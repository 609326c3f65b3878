"""The concept quizzes: every bank in quizzes/ (schema, sources, recomputed answers, errata coverage),
then the engine and the `quiz` / `progress` commands on the small banks in tests/quiz_fixtures/."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from grader import course
from grader import quiz as quizlib
from grader.cli_quiz import progress, quiz

ROOT = course.kit_root()
BANKS = ROOT / "quizzes"
FIXTURES = Path(__file__).parent / "quiz_fixtures"
tomllib = quizlib.tomllib  # tomli on Python 3.10
NOTES = ROOT.parent / "shared" / "notes"
SUBJECTS = ("rnn_basics", "language_models", "embeddings", "cnn_text", "transformers_vs_rnns")
MIN_QUESTIONS = {**{name: 12 for name in course.names()}, **{name: 8 for name in SUBJECTS}}


def raw_questions(folder: Path = BANKS) -> list[tuple[str, dict]]:
    """(bank, question table) for every parseable bank; a broken file fails its own schema test."""
    out = []
    for path in quizlib.bank_files(folder):
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError:
            continue
        out += [(path.stem, q) for q in data.get("question", []) if isinstance(q, dict)]
    return out


def qid(item) -> str:
    return str(item[1].get("id"))


# --- the banks in quizzes/ ----------------------------------------------------------------------

@pytest.mark.parametrize("path", quizlib.bank_files(BANKS), ids=lambda p: p.stem)
def test_bank_is_well_formed(path):
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        pytest.fail(f"{path.name} is not valid TOML: {exc}")
    problems = quizlib.bank_problems(data, path.stem)
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", quizlib.bank_files(BANKS), ids=lambda p: p.stem)
def test_bank_has_enough_questions_and_a_known_name(path):
    assert path.stem in MIN_QUESTIONS, (
        f"{path.name}: a bank is named after an exercise topic or one of {SUBJECTS}")
    count = len(tomllib.loads(path.read_text()).get("question", []))
    assert count >= MIN_QUESTIONS[path.stem], f"{path.name} has {count} questions, needs {MIN_QUESTIONS[path.stem]}"


def test_every_topic_and_subject_has_a_bank():
    missing = sorted(set(MIN_QUESTIONS) - {p.stem for p in quizlib.bank_files(BANKS)})
    assert not missing, f"no bank yet for {missing} (write quizzes/<name>.toml)"


def test_question_ids_are_unique_across_banks():
    seen: dict[str, str] = {}
    for bank, q in raw_questions():
        assert q.get("id") not in seen, f"id {q.get('id')!r} is in both {seen[q['id']]}.toml and {bank}.toml"
        seen[q.get("id")] = bank


def test_every_bank_loads():
    banks = quizlib.load_banks(BANKS)
    assert set(banks) == {p.stem for p in quizlib.bank_files(BANKS)}


@pytest.mark.parametrize("item", raw_questions(), ids=qid)
def test_source_points_at_a_real_note_section(item):
    problem = quizlib.source_problem(str(item[1].get("source")), quizlib.load_sources())
    assert problem is None, f"{item[0]}.toml, {qid(item)}: {problem}"


def test_sources_list_matches_the_notes():
    if not NOTES.is_dir():
        pytest.skip(f"the course notes are not at {NOTES}")
    sources = quizlib.load_sources()
    files = {p.name[:3]: p for p in NOTES.glob("[0-9][0-9][0-9]_*.txt")}
    assert set(sources) == set(files)
    for number, path in files.items():
        title, sections = quizlib.note_headings(path.read_text())
        assert sources[number]["title"] == title, f"quizzes/sources.toml: title of note {number}"
        assert sources[number]["sections"] == sections, f"quizzes/sources.toml: headings of note {number}"


def _reference(topic: str):
    spec = importlib.util.spec_from_file_location(f"quiz_ref_{topic}", ROOT / "reference" / f"{topic}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def recompute(expression: str):
    import torch
    import torch.nn.functional as F
    from torch import nn

    names = {"math": math, "torch": torch, "F": F, "nn": nn, "ref": _reference}
    torch.manual_seed(0)  # a check that draws random numbers gets the same ones every run
    return eval(expression, names)  # noqa: S307 - the kit's own bank, not learner input


def assert_check_agrees(bank: str, q: dict) -> None:
    where = f"{bank}.toml, {q.get('id')}"
    value = recompute(q["check"])
    if q["type"] == "numeric":
        value = float(value)
        assert abs(value - q["answer"]) <= q["tolerance"] + 1e-12, (
            f"{where}: check {q['check']!r} gives {value!r}, the answer says {q['answer']} ± {q['tolerance']}")
    else:
        assert str(value) == q["answer"][0], (
            f"{where}: check {q['check']!r} gives {str(value)!r}, the first accepted form is {q['answer'][0]!r}")


@pytest.mark.parametrize("item", [i for i in raw_questions() if "check" in i[1]], ids=qid)
def test_computed_answer_is_recomputed(item):
    assert_check_agrees(*item)


def test_every_errata_item_is_taught_by_a_question():
    covered = {q.get("errata") for _, q in raw_questions()}
    missing = [n for n in quizlib.ERRATA if n not in covered]
    assert not missing, f"no question marked errata = N for errata items {missing} (shared/notes/README.md)"


# --- the engine, on the fixture banks ------------------------------------------------------------

@pytest.fixture
def banks():
    return quizlib.load_banks(FIXTURES)


def asked(banks, question_id: str, seed: int | None = None) -> quizlib.Asked:
    q = next(q for b in banks.values() for q in b.questions if q.id == question_id)
    return quizlib.shuffle_choices(q, seed)


def test_fixture_banks_pass_the_same_checks_as_real_ones():
    sources = quizlib.load_sources()
    for path in quizlib.bank_files(FIXTURES):
        assert quizlib.bank_problems(tomllib.loads(path.read_text()), path.stem) == []
    for bank, q in raw_questions(FIXTURES):
        assert quizlib.source_problem(q["source"], sources) is None
        if "check" in q:
            assert_check_agrees(bank, q)


def test_banks_load_in_course_order_then_by_name(banks):
    assert list(banks) == ["sdpa", "arith"]


@pytest.mark.parametrize("edit,says", [
    (lambda q: q.update(answer="d_k squared"), "answer must be the exact text"),
    (lambda q: q.update(id="attention-scale"), "id must start with 'sdpa-'"),
    (lambda q: q.update(type="essay"), "type 'essay'"),
    (lambda q: q.update(choices=["a", "b"]), "3 to 6"),
    (lambda q: q.update(errata=11), "errata must be"),
    (lambda q: q.update(hint="x"), "unknown keys"),
    (lambda q: q.update(source="Attention"), "source must read"),
])
def test_a_broken_question_is_named_with_what_to_fix(edit, says):
    data = tomllib.loads((FIXTURES / "sdpa.toml").read_text())
    edit(data["question"][0])
    problems = quizlib.bank_problems(data, "sdpa")
    assert any(says in p for p in problems), problems


def test_numeric_needs_a_tolerance_and_short_needs_accepted_forms():
    data = tomllib.loads((FIXTURES / "sdpa.toml").read_text())
    del data["question"][2]["tolerance"]
    data["question"][3]["answer"] = []
    problems = quizlib.bank_problems(data, "sdpa")
    assert any("tolerance" in p for p in problems) and any("accepted forms" in p for p in problems)


def test_choice_shuffling_is_deterministic_per_seed(banks):
    q = asked(banks, "sdpa-scale").question
    assert quizlib.shuffle_choices(q, None).choices == q.choices
    assert quizlib.shuffle_choices(q, 7) == quizlib.shuffle_choices(q, 7)
    orders = {quizlib.shuffle_choices(q, seed).choices for seed in range(20)}
    assert len(orders) > 1 and all(sorted(o) == sorted(q.choices) for o in orders)
    first = [a.question.id for a in quizlib.select(banks.values(), seed=3)]
    assert first == [a.question.id for a in quizlib.select(banks.values(), seed=3)]
    assert quizlib.select(banks.values(), seed=3) == quizlib.select(banks.values(), seed=3)
    assert [a.question.id for a in quizlib.select(banks.values(), n=2)] == ["sdpa-scale", "sdpa-mask-blocks"]


def test_a_question_keeps_its_letters_whatever_else_is_asked(banks):
    alone = quizlib.select([banks["sdpa"]], seed=11, ids=["sdpa-scale"])[0]
    among = next(a for a in quizlib.select(banks.values(), seed=11) if a.question.id == "sdpa-scale")
    assert alone.choices == among.choices


def test_single_choice_accepts_the_letter_or_the_text(banks):
    a = asked(banks, "sdpa-scale")  # bank order: a) sqrt(d_k)
    assert quizlib.grade(a, "a") and quizlib.grade(a, "A") and quizlib.grade(a, "a)")
    assert quizlib.grade(a, " SQRT(d_k) ") and quizlib.grade(a, ["a"])
    assert not quizlib.grade(a, "b") and not quizlib.grade(a, "z") and not quizlib.grade(a, "d_k")
    shuffled = asked(banks, "sdpa-scale", seed=5)
    letter = quizlib.LETTERS[shuffled.choices.index("sqrt(d_k)")]
    assert quizlib.grade(shuffled, letter)


def test_multiple_select_is_order_free_and_needs_every_right_choice(banks):
    a = asked(banks, "sdpa-mask-blocks")  # a and b are right
    for right in ("a,b", "b, a", "a b", "ab", ["b", "a"], [a.choices[0], a.choices[1]],
                  f"{a.choices[1]},{a.choices[0]}"):
        assert quizlib.grade(a, right), right
    for wrong in ("a", "a,b,c", "c", "", ["a"], "a,z"):
        assert not quizlib.grade(a, wrong), wrong


def test_numeric_answers_within_tolerance_as_numbers_or_fractions(banks):
    a = asked(banks, "sdpa-softmax-half")
    for right in (0.5, "0.5", "1/2", " 2 / 4 ", "5e-1", 0.5009, ".5"):
        assert quizlib.grade(a, right), right
    for wrong in (0.502, "1/3", "half", "1/0", "__import__('os')", "0.5.1"):
        assert not quizlib.grade(a, wrong), wrong
    exact = asked(banks, "arith-receptive-field")
    assert quizlib.grade(exact, 7) and quizlib.grade(exact, "7") and not quizlib.grade(exact, 7.01)


def test_short_answers_ignore_case_and_whitespace(banks):
    a = asked(banks, "sdpa-name")
    for right in ("softmax", "SoftMax", " soft max ", "soft  max"):
        assert quizlib.grade(a, right), right
    assert not quizlib.grade(a, "sigmoid") and not quizlib.grade(a, "")


def test_an_unreadable_answer_is_asked_again_not_graded(banks):
    with pytest.raises(quizlib.InvalidAnswer, match="a-d"):
        quizlib.parse(asked(banks, "sdpa-scale"), "e")
    with pytest.raises(quizlib.InvalidAnswer, match="number"):
        quizlib.parse(asked(banks, "sdpa-softmax-half"), "about a half")


@pytest.mark.parametrize("name,text,says", [
    ("a.toml", "sdpa-scale = ", "not valid TOML"),
    ("a.json", "{\"sdpa-scale\": ", "not valid JSON"),
    ("a.json", "[\"a\"]", "must map question ids"),
    ("a.toml", "", "must map question ids"),
    ("a.json", "{\"sdpa-scale\": {\"x\": 1}}", "must be a string, a number"),
    ("a.json", "{\"sdpa-scale\": null}", "must be a string, a number"),
    ("a.json", "{\"sdpa-scale\": true}", "must be a string, a number"),
])
def test_malformed_answers_files_are_one_line_errors(tmp_path, name, text, says):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(quizlib.QuizError, match=says) as info:
        quizlib.read_answers(path)
    assert "\n" not in str(info.value)


def test_unknown_topics_and_ids_are_named_with_a_suggestion(banks):
    with pytest.raises(quizlib.QuizError, match="unknown quiz topic 'sdpx'.*Did you mean 'sdpa'"):
        quizlib.pick_banks(banks, ["sdpx"])
    with pytest.raises(quizlib.QuizError, match="unknown question id 'sdpa-scal'.*Did you mean 'sdpa-scale'"):
        quizlib.select(banks.values(), ids=["sdpa-scal"])


# --- the commands ---------------------------------------------------------------------------------

APP = click.Group("seqlings", commands=[quiz, progress])


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """A learner's workspace with its own database, quizzing from the fixture banks."""
    monkeypatch.setenv("SEQLINGS_HOME", str(tmp_path))
    monkeypatch.setenv("SEQLINGS_DB", str(tmp_path / "state" / "progress.db"))
    monkeypatch.setenv("SEQLINGS_QUIZZES", str(FIXTURES))
    return tmp_path


def invoke(*args, input=None):
    return CliRunner().invoke(APP, [str(a) for a in args], input=input)


RIGHT = {"sdpa-scale": "sqrt(d_k)", "sdpa-mask-blocks": "a,b", "sdpa-softmax-half": "1/2",
         "sdpa-name": "Softmax", "arith-receptive-field": 7, "arith-ratio": "3/4", "arith-collapse": "helo"}


def answers_file(ws, answers: dict, name="answers.json") -> Path:
    path = ws / name
    path.write_text(json.dumps(answers))
    return path


def answered(ws) -> list[tuple[str, int]]:
    import sqlite3

    with sqlite3.connect(ws / "state" / "progress.db") as conn:
        return conn.execute("SELECT question, correct FROM quiz_answers ORDER BY id").fetchall()


def test_quiz_help_has_an_example_and_every_option_is_explained():
    result = invoke("quiz", "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output and "seqlings quiz" in result.output
    for command in (quiz, progress):
        assert command.help and all(p.help for p in command.params if isinstance(p, click.Option))


def test_answers_all_right_exit_0_with_a_report(ws):
    report = ws / "report.json"
    result = invoke("quiz", "--answers", answers_file(ws, RIGHT), "--json", report)
    assert result.exit_code == 0, result.output
    assert "Score: 7/7" in result.output
    data = json.loads(report.read_text())
    assert data["score"] == data["max_score"] == 7
    assert [q["id"] for q in data["questions"]] == list(RIGHT)
    first = data["questions"][0]
    assert first["given"] == "sqrt(d_k)" and first["correct"] is True and first["explanation"]


def test_answers_from_toml_with_one_wrong_exit_1(ws):
    path = ws / "answers.toml"
    path.write_text('sdpa-scale = "b"\nsdpa-mask-blocks = ["b", "a"]\narith-ratio = 0.75\n')
    result = invoke("quiz", "--answers", path, "--json", "-")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert [(q["id"], q["correct"]) for q in data["questions"]] == [
        ("sdpa-scale", False), ("sdpa-mask-blocks", True), ("arith-ratio", True)]
    assert data["score"] == 2 and data["max_score"] == 3


def test_answers_letters_follow_the_seed(ws):
    item = quizlib.select(quizlib.load_banks(FIXTURES).values(), seed=4, ids=["sdpa-scale"])[0]
    letter = quizlib.LETTERS[item.choices.index("sqrt(d_k)")]
    path = answers_file(ws, {"sdpa-scale": letter})
    assert invoke("quiz", "--answers", path, "--seed", 4).exit_code == 0


@pytest.mark.parametrize("content,args,says", [
    ("{not json", (), "not valid JSON"),
    ('{"sdpa-nope": "a"}', (), "unknown question id 'sdpa-nope'"),
    ('{"arith-ratio": "1/2"}', ("sdpa",), "unknown question id 'arith-ratio'"),
    ('{"sdpa-scale": "a"}', ("sdpx",), "unknown quiz topic 'sdpx'"),
    ('{"sdpa-scale": "a"}', ("-n", "1"), "leave out -n and --due"),
])
def test_bad_quiz_input_exits_2_with_one_line(ws, content, args, says):
    path = ws / "answers.json"
    path.write_text(content)
    result = invoke("quiz", *args, "--answers", path)
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (ws / "state" / "progress.db").exists() or answered(ws) == []


def test_missing_answers_file_and_unknown_topic_exit_2(ws):
    for args in (["quiz", "--answers", ws / "nope.toml"], ["quiz", "nonsense"]):
        result = invoke(*args)
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output


def test_a_broken_bank_is_a_one_line_error(ws, tmp_path, monkeypatch):
    broken = tmp_path / "banks"
    broken.mkdir()
    (broken / "sdpa.toml").write_text('bank = "sdpa"\ntitle = "x"\n[[question]]\nid = "sdpa-a"\ntype = "single"\n')
    monkeypatch.setenv("SEQLINGS_QUIZZES", str(broken))
    result = invoke("quiz", "-n", 1)
    assert result.exit_code == 2 and "sdpa.toml" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_interactive_quiz_gives_feedback_and_a_score(ws):
    items = quizlib.select([quizlib.load_banks(FIXTURES)["sdpa"]], seed=1)
    typed = []
    for item in items:
        q = item.question
        if q.type == "single":
            typed += ["z", quizlib.LETTERS[item.choices.index(q.answer)]]  # z is out of range: asked again
        elif q.type == "multi":
            typed.append(",".join(quizlib.LETTERS[item.choices.index(c)] for c in q.answer))
        elif q.type == "numeric":
            typed.append("0.3")  # wrong
        else:
            typed.append("SOFT MAX")
    result = invoke("quiz", "sdpa", "--seed", 1, input="\n".join(typed) + "\n")
    assert result.exit_code == 1, result.output  # one wrong answer
    out = result.output
    assert "[1/4]" in out and "a) " in out and "d) " in out
    assert "Error: answer with a letter a-d" in out
    assert out.count("✓ Right.") == 3 and out.count("✗ Not quite.") == 1
    assert "The answer: 0.5" in out and "Equal scores share the mass equally." in out
    assert "Score: 3/4" in out
    assert sorted(answered(ws)) == sorted([(i.question.id, int(i.question.type != "numeric")) for i in items])


def test_a_wrong_card_comes_back_sooner_and_due_respects_the_schedule(ws, monkeypatch):
    start = quizlib.now()
    monkeypatch.setattr(quizlib, "now", lambda: start)
    path = answers_file(ws, {"sdpa-scale": "a", "sdpa-name": "sigmoid"})
    assert invoke("quiz", "--answers", path).exit_code == 1
    assert "Nothing is due" in invoke("quiz", "--due").output

    monkeypatch.setattr(quizlib, "now", lambda: start + timedelta(minutes=2))
    assert quizlib.select(quizlib.load_banks(FIXTURES).values(), due_only=True)[0].question.id == "sdpa-name"
    result = invoke("quiz", "--due", "--seed", 0, input="softmax\n")
    assert result.exit_code == 0, result.output
    assert "[1/1]" in result.output and "Name the function" in result.output

    monkeypatch.setattr(quizlib, "now", lambda: start + timedelta(minutes=11))
    due = quizlib.due_cards()
    assert set(due) == {"sdpa-scale"}  # answered right at start: due after 10 minutes; sdpa-name moved on
    monkeypatch.setattr(quizlib, "now", lambda: start + timedelta(days=30))
    assert set(quizlib.due_cards()) == {"sdpa-scale", "sdpa-name"}
    assert len(answered(ws)) == 3


def test_review_state_persists_across_runs(ws):
    path = answers_file(ws, {"arith-ratio": "3/4"})
    assert invoke("quiz", "--answers", path).exit_code == 0
    assert invoke("quiz", "--answers", path).exit_code == 0
    assert answered(ws) == [("arith-ratio", 1), ("arith-ratio", 1)]
    stats = quizlib.stats(quizlib.now() + timedelta(days=365))
    assert stats["arith"] == quizlib.BankStats(answered=2, correct=2, seen=1, due=1)


def test_a_crash_mid_quiz_keeps_the_answers_already_saved(ws, monkeypatch):
    real, calls = quizlib.grade, []

    def grade_then_crash(item, raw):
        calls.append(item.question.id)
        if len(calls) == 3:
            raise RuntimeError("power cut")
        return real(item, raw)

    monkeypatch.setattr(quizlib, "grade", grade_then_crash)
    result = invoke("quiz", "--answers", answers_file(ws, RIGHT))
    assert isinstance(result.exception, RuntimeError)
    assert answered(ws) == [("sdpa-scale", 1), ("sdpa-mask-blocks", 1)]


def test_ctrl_c_mid_quiz_keeps_the_answers_given(ws):
    items = quizlib.select(quizlib.load_banks(FIXTURES).values(), seed=2)
    first = items[0]
    typed = "1\n" if first.question.type == "numeric" else "a\n"  # then the input ends, as Ctrl-D would
    result = invoke("quiz", "--seed", 2, input=typed)
    assert result.exit_code == 1 and "1 answer(s) saved" in result.output
    assert [q for q, _ in answered(ws)] == [first.question.id]


def test_progress_shows_exercises_quiz_accuracy_and_cards_due(ws):
    from grader import progress as store

    store.record_check({"topic": "sdpa", "impl": "exercises/sdpa.py", "score": 3.0, "max_score": 3.0})
    invoke("quiz", "--answers", answers_file(ws, {"sdpa-scale": "a", "sdpa-name": "sigmoid"}))
    result = invoke("progress")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if " sdpa " in line)
    assert "passed" in row and "1/2 (50%)" in row and "2/4" in row
    assert "arith" in result.output and "Exercises passed: 1/" in result.output


def test_quiz_does_not_import_torch(ws):
    path = answers_file(ws, RIGHT)
    code = ("import sys, click\nfrom click.testing import CliRunner\nfrom grader.cli_quiz import quiz, progress\n"
            "app = click.Group(commands=[quiz, progress])\n"
            "assert CliRunner().invoke(app, ['quiz', '--help']).exit_code == 0\n"
            f"r = CliRunner().invoke(app, ['quiz', '--answers', {str(path)!r}])\n"
            "assert r.exit_code == 0, r.output\n"
            "assert CliRunner().invoke(app, ['progress']).exit_code == 0\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy(),
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
