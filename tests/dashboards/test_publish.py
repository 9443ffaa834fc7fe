"""fastapi-lookout-publish against a stand-in for Grafana's documented HTTP API (tests/support/fake_grafana.py):
no Grafana binary can run here, so the stand-in implements the endpoints and the errors the publisher meets."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboards import publish
from tests.support.binaries import free_port
from tests.support.fake_grafana import FakeGrafana

ROOT = Path(__file__).resolve().parents[2]
UIDS = {"application-logs", "audit-logs", "fastapi-metrics", "keycloak-metrics"}


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    fake = FakeGrafana()
    yield fake
    fake.close()


@pytest.fixture
def dashboards(tmp_path: Path) -> Path:
    out = tmp_path / "dashboards"
    shutil.copytree(ROOT / "grafana" / "dashboards", out)
    return out


def run(grafana: FakeGrafana, dashboards: Path, monkeypatch: pytest.MonkeyPatch, *extra: str,
        token: str = "sa-token") -> int:
    monkeypatch.setenv(publish.TOKEN_ENV, token)
    return publish.main(["--grafana-url", grafana.url, "--dashboards", str(dashboards), *extra])


def test_first_publish_creates_the_folder_and_every_dashboard_then_nothing_changes(
        grafana, dashboards, monkeypatch, capsys):
    assert run(grafana, dashboards, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "folder observability-bundle: created (Observability bundle)" in out
    assert out.endswith("4 create, 0 update, 0 unchanged\n")
    assert set(grafana.dashboards) == UIDS
    assert {d["folderUid"] for d in grafana.dashboards.values()} == {"observability-bundle"}
    assert all(s["overwrite"] is False for s in grafana.saves)

    assert run(grafana, dashboards, monkeypatch) == 0
    assert capsys.readouterr().out.endswith("0 create, 0 update, 4 unchanged\n")
    assert len(grafana.saves) == 4  # nothing saved again: versions and history stay as they are


def test_only_the_changed_dashboard_is_saved_with_the_version_it_was_read_at(grafana, dashboards, monkeypatch, capsys):
    assert run(grafana, dashboards, monkeypatch) == 0
    path = dashboards / "audit-logs.json"
    data = json.loads(path.read_text())
    data["title"] = "Audit trail"
    path.write_text(json.dumps(data))
    capsys.readouterr()
    assert run(grafana, dashboards, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "update audit-logs (title)" in out and out.endswith("0 create, 1 update, 3 unchanged\n")
    assert grafana.saves[-1]["dashboard"]["version"] == 1
    assert grafana.dashboards["audit-logs"]["dashboard"]["title"] == "Audit trail"


def test_dry_run_prints_what_would_change_and_changes_nothing(grafana, dashboards, monkeypatch, capsys):
    assert run(grafana, dashboards, monkeypatch, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "folder observability-bundle: would create" in out
    assert sum(line.startswith("would create ") for line in out.splitlines()) == 4
    assert out.endswith("dry run: 4 create, 0 update, 0 unchanged\n")
    assert grafana.saves == [] and grafana.folders == {}


def test_a_refused_token_fails_with_grafanas_answer(grafana, dashboards, monkeypatch, capsys):
    assert run(grafana, dashboards, monkeypatch, token="wrong") == 1
    assert capsys.readouterr().err == "error: folder observability-bundle: Grafana answered 401: invalid API key\n"


def test_an_edit_made_in_between_is_refused_not_overwritten(grafana, dashboards, monkeypatch, capsys):
    assert run(grafana, dashboards, monkeypatch) == 0
    data = json.loads((dashboards / "fastapi-metrics.json").read_text())
    (dashboards / "fastapi-metrics.json").write_text(json.dumps({**data, "title": "Service"}))
    real_plan = publish.plan

    def plan_then_someone_edits(api, wanted, folder):
        changes = real_plan(api, wanted, folder)
        grafana.edit("fastapi-metrics")  # between our read and our save
        return changes

    monkeypatch.setattr(publish, "plan", plan_then_someone_edits)
    capsys.readouterr()
    assert run(grafana, dashboards, monkeypatch) == 1
    assert capsys.readouterr().err == ("error: dashboard fastapi-metrics: Grafana answered 412: The dashboard has "
                                       "been changed by someone else\n")
    assert grafana.dashboards["fastapi-metrics"]["dashboard"]["title"].endswith("(edited)")


def test_a_dashboard_in_another_folder_is_moved_into_ours(grafana, dashboards, monkeypatch, capsys):
    assert run(grafana, dashboards, monkeypatch) == 0
    grafana.folders["elsewhere"] = {"uid": "elsewhere", "title": "Elsewhere"}
    grafana.dashboards["audit-logs"]["folderUid"] = "elsewhere"
    capsys.readouterr()
    assert run(grafana, dashboards, monkeypatch) == 0
    assert "update audit-logs (folder)" in capsys.readouterr().out
    assert grafana.dashboards["audit-logs"]["folderUid"] == "observability-bundle"


def test_no_token_no_url_or_no_dashboards_is_a_usage_error(grafana, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(publish.TOKEN_ENV, raising=False)
    assert publish.main(["--grafana-url", grafana.url, "--dashboards", str(tmp_path)]) == 2
    assert "set GRAFANA_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv(publish.TOKEN_ENV, "sa-token")
    assert publish.main(["--grafana-url", grafana.url, "--dashboards", str(tmp_path)]) == 2
    assert "no dashboard JSON" in capsys.readouterr().err


def test_an_unreachable_grafana_fails_saying_so(dashboards, monkeypatch, capsys):
    monkeypatch.setenv(publish.TOKEN_ENV, "sa-token")
    assert publish.main(["--grafana-url", f"http://127.0.0.1:{free_port()}", "--dashboards", str(dashboards)]) == 1
    assert capsys.readouterr().err.startswith("error: ")
