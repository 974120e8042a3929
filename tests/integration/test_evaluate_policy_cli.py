"""``tierwise evaluate-policy`` end to end: a real decision log, its feedback and the table."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from serving.decisions import DecisionLog
from tests.unit.monitoring.test_evaluation import decision
from tierwise.cli import app


def test_the_command_estimates_a_candidate_on_the_logged_decisions(tmp_path, monkeypatch):
    # Given a log where card or savings was shown with probability 1/2 each (one
    # suggestion), 3 of 10 card and 2 of 10 savings suggestions accepted, two decisions
    # logged before the inputs were kept, and a candidate policy that never offers card
    home = tmp_path / "home"
    monkeypatch.setenv("TIERWISE_HOME", str(home))
    monkeypatch.delenv("TIERWISE_DECISION_STORE_URL", raising=False)
    monkeypatch.delenv("TIERWISE_POLICY_FILE", raising=False)
    home.mkdir()
    log = DecisionLog(f"sqlite:///{home.resolve() / 'decisions.db'}")
    for n in range(200):
        action = "card" if n % 2 else "savings"
        d = decision(n, [(action, 0.5)])
        log.record(d)
        accepted = (n // 2) % 10 < (3 if action == "card" else 2)
        response = "accepted" if accepted else "declined"
        log.add_feedback(d.decision_id, f"d{n}-{action}", response, "a1", now=d.created_at)
    for n in range(2):
        log.record(decision(500 + n, [("card", 0.5)], inputs=None))
    log.close()
    policy = {"holdout_shares": {}, "control_share": 0.0, "adaptive": {"exploration_share": 0}}
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(yaml.safe_dump({**policy, "levers": {"card": 0.0}}))
    current = tmp_path / "policy.yaml"
    current.write_text(yaml.safe_dump(policy))

    # When it is evaluated against the current policy
    command = ["evaluate-policy", "--policy", str(candidate), "--current", str(current)]
    result = CliRunner().invoke(app, command)

    # Then the table gives the truth, savings' 0.2 accepted and 20 per decision, beside the
    # observed mix, and the decisions left out are counted
    assert result.exit_code == 0, result.output
    assert "200 of 202 decisions evaluated" in result.output, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines() if line}
    assert rows["current"].split()[1] == "0.2500", rows["current"]
    for estimator in ("IPS", "SNIPS", "DR"):
        assert rows[estimator].split()[1] == "0.2000", rows[estimator]
        assert "20.00 [" in rows[estimator], rows[estimator]
    assert "2 decisions logged before their inputs were kept are left out" in result.output

    # When only the first day's decisions are asked for (all 202 were made on 1 July), then
    # the second is empty and says why
    later = CliRunner().invoke(app, [*command, "--since", "2026-07-02"])
    assert later.exit_code == 0, later.output
    assert "0 of 0 decisions evaluated" in later.output
    assert "no decision has the inputs and propensities" in later.output


def test_a_bad_candidate_file_or_date_ends_the_command_with_what_is_wrong(tmp_path, monkeypatch):
    monkeypatch.setenv("TIERWISE_HOME", str(tmp_path / "home"))
    bad = tmp_path / "candidate.yaml"
    bad.write_text(yaml.safe_dump({"control_share": 3}))
    result = CliRunner().invoke(app, ["evaluate-policy", "--policy", str(bad)])
    assert result.exit_code == 1 and "candidate.yaml" in result.output, result.output
    dated = CliRunner().invoke(app, ["evaluate-policy", "--policy", str(bad), "--until", "July"])
    assert dated.exit_code == 1 and "--until must be a date" in dated.output, dated.output


def test_no_decision_log_is_said_plainly(tmp_path, monkeypatch):
    monkeypatch.setenv("TIERWISE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TIERWISE_DECISION_STORE_URL", raising=False)
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text("{}")
    result = CliRunner().invoke(app, ["evaluate-policy", "--policy", str(candidate)])
    assert result.exit_code == 1 and "no decision log at" in result.output, result.output
