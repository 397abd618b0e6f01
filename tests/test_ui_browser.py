"""The MLflow UI in a real browser: `automl ui` after a tiny real search, read by headless Chromium.

Needs Debian's ``chromium`` and ``chromium-driver`` (.ci/run installs them) and selenium (the dev extra);
selenium drives the system Chromium through the system chromedriver, and downloads nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from cli.main import app

ROOT = Path(__file__).resolve().parents[1]
README_SCREENSHOT = ROOT / "docs" / "mlflow-compare.png"
UPDATE_SCREENSHOTS = "AUTOML_UPDATE_SCREENSHOTS"  # set it to refresh the README's picture
TRIALS = 3
WAIT_S = 60
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1600,1300",
)

chromium = shutil.which("chromium") or shutil.which("chromium-browser")
chromedriver = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    chromium is None or chromedriver is None,
    reason="needs Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A 3-trial search on demo:wine, then `automl ui` on a free loopback port until the module ends."""
    root = tmp_path_factory.mktemp("ui")
    home = root / "store"
    result = CliRunner().invoke(
        app,
        ["search", "--data", "demo:wine", "--trials", str(TRIALS), "--epochs", "2", "--study", "browse",
         "--home", str(home), "--quiet", "--pruner", "none", "--sampler", "random"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("browse")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=50)
    trials = sorted(
        (r for r in runs if r.data.tags.get("automl.role") == "trial"), key=lambda r: r.data.tags["automl.trial_number"]
    )
    port = _free_port()
    log = (root / "ui.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "ui", "--home", str(home), "--port", str(port)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        # one worker and no job runner: the same UI, started in seconds instead of half a minute on 2 cores
        env={**os.environ, "MLFLOW_WORKERS": "1", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        start_new_session=True,  # `automl ui` runs `mlflow ui` as a child: stop the whole group at the end
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, (root / "ui.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "automl ui did not answer /health in 90 s"
            time.sleep(0.5)
        yield {"base": base, "experiment_id": experiment.experiment_id, "trials": trials, "client": client}
    finally:
        _stop_group(process)
        log.close()


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the UI's process group (mlflow ui and its uvicorn workers), SIGKILL what outlives 20 s."""
    group = process.pid  # start_new_session: the group id is the leader's pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break
        process.poll()
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    process.wait()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is part of the dev extra")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(chromedriver)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _page_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "body").text)


def _wait_for_text(driver: Any, *needles: str) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT_S).until(lambda d: all(n in _page_text(d) for n in needles))
    return _page_text(driver)


def test_experiment_page_lists_the_trial_runs(served: dict[str, Any], browser: Any) -> None:
    # sorted by name, the trial runs are listed flat instead of nested (collapsed) under the study's run
    browser.get(f"{served['base']}/#/experiments/{served['experiment_id']}/runs?orderByKey=attributes.run_name")
    text = _wait_for_text(browser, *(f"trial-{n}" for n in range(TRIALS)))
    assert "browse" in text and f"{TRIALS + 1} matching runs" in text


def test_trial_page_shows_loss_optimizer_and_an_epoch_chart(served: dict[str, Any], browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    run = served["trials"][0]
    name, optimizer = run.info.run_name, run.data.params["optimizer"]
    loss = run.data.metrics["loss"]
    browser.get(f"{served['base']}/#/experiments/{served['experiment_id']}/runs/{run.info.run_id}")
    text = _wait_for_text(browser, "Parameters", "Metrics", "learning_rate")
    assert "optimizer" in text and optimizer in text and "loss" in text
    assert repr(loss)[:8] in text  # the last epoch's training loss, as recorded
    browser.get(f"{served['base']}/#/experiments/{served['experiment_id']}/runs/{run.info.run_id}/model-metrics")
    _wait_for_text(browser, f"{name} (loss)", "Step")  # a line chart over epochs (steps), not a single value
    WebDriverWait(browser, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, "path.js-line"))
    assert len(served["client"].get_metric_history(run.info.run_id, "loss")) == 2


def test_compare_page_screenshot_for_the_readme(served: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    ids = [run.info.run_id for run in served["trials"]]
    query = urllib.parse.urlencode({"runs": json.dumps(ids), "experiments": json.dumps([served["experiment_id"]])})
    browser.get(f"{served['base']}/#/compare-runs?{query}")
    text = _wait_for_text(browser, f"Comparing {TRIALS} Runs", "learning_rate", "val_accuracy")
    assert all(f"trial-{n}" in text for n in range(TRIALS))
    for button in browser.find_elements(By.CSS_SELECTOR, "button[aria-label='Close']"):
        if button.is_displayed():  # the assistant side panel would take a third of the picture
            button.click()
    time.sleep(1)  # let the parallel-coordinates plot finish its transition
    screenshot = README_SCREENSHOT if os.environ.get(UPDATE_SCREENSHOTS) else tmp_path / "compare.png"
    screenshot.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000
