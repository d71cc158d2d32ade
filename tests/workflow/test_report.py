"""The reproduction report as a user sees it: a tiny real run of both studies (real Snakemake,
training, cubes, figures, claims), `snakemake --report`, then the report opened in headless
Chromium (Debian's package, installed by tests/browser/chromium.sh): the claims scorecard
renders on the landing page with every claim's row and verdict, and every figure of every
study loads as an image in the report's viewer, with its caption.

One run serves every test here (module fixture); its config is cut from tests/data/tiny.yaml
and tiny_geiger.yaml (one label, two depths; one Geiger width and seed) so it takes about a
minute on 2 cores, and it makes one claim impossible (Table 1 with tolerance 0) so the
scorecard must show a failing row.
"""

import os
import shutil
import subprocess
import tempfile
import time

import pandas as pd
import pytest
import yaml
from conftest import REPO, run_snakemake

CHROMIUM_SH = REPO / "tests" / "browser" / "chromium.sh"
CANNOT_RUN = 77  # chromium.sh: this machine cannot provide headless Chromium
TIMEOUT_S = 60


def _report_config() -> dict:
    mori = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    geiger = yaml.safe_load((REPO / "tests" / "data" / "tiny_geiger.yaml").read_text())
    tiny = mori["studies"]["tiny"]
    tiny["grids"] = [{"datasets": ["global2"], "n_train": [120], "depth": [1, 2],
                      "width": [32], "lr": [0.1], "seeds": [0, 1]}]
    for key in ("lr_selection", "local_stability"):
        tiny.pop(key, None)
    tiny["summary"] = {"shallow": 1, "deep": 2}
    tiny["kernel_baseline"] = {"kernel": "ntk_mu", "depths": [1]}
    tiny["figures"] = {"fig2": {"plot": "test_error_vs_n", "datasets": ["global2"],
                                "lr": 0.1}}
    g = geiger["studies"]["geiger"]
    g["grids"] = [{"activation": ["softplus"], "depth": [2], "width": [8],
                   "alpha_sqrt_h": [0.01, 0.1, 1.0e4], "seeds": [0]}]
    g["figures"] = {name: g["figures"][name] for name in ("fig1c", "fig3a")}
    # one seed gives Table 1 two fit points: allowed for every table1 claim (kind setting),
    # and one claim made impossible (id setting: no tolerance and, as two points leave the
    # fit without an SE, no noise margin): it must show as failing, not disappear
    g["claims"] = {"table1": {"min_points": 2},
                   "table1_kernel_L2": {"tolerance": 0.0, "separation": 0.0}}
    return {
        "results": "results",
        "scale": "tiny",
        "threads": mori["threads"],
        "datasets": {"global2": mori["datasets"]["global2"],
                     "digits": geiger["datasets"]["digits"]},
        "kernels": mori["kernels"],
        "studies": {"tiny": tiny, "geiger": g},
    }


@pytest.fixture(scope="module")
def report_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("report")
    (work / "report.yaml").write_text(yaml.safe_dump(_report_config(), sort_keys=False))
    t0 = time.monotonic()
    run_snakemake("--cores", "2", "--configfile", "report.yaml", cwd=work)
    t1 = time.monotonic()
    proc = run_snakemake("--configfile", "report.yaml", "--report", "results/report.html",
                         cwd=work)
    print(f"tiny run {t1 - t0:.0f} s, report {time.monotonic() - t1:.0f} s")
    return work, proc


def test_claims_of_both_studies_and_the_failing_one(report_run):
    work, _ = report_run
    res = work / "results"
    combined = pd.read_csv(res / "claims.csv", keep_default_na=False)
    assert list(dict.fromkeys(combined["study"])) == ["tiny", "geiger"]
    for study in ("tiny", "geiger"):
        own = pd.read_csv(res / study / "claims.csv", keep_default_na=False)
        assert len(own) > 0 and set(own["study"]) == {study}
        assert (combined[combined["study"] == study]["claim_id"].tolist()
                == own["claim_id"].tolist())
    row = combined.set_index("claim_id").loc["table1_kernel_L2"]
    assert row["verdict"] == "fails" and "<= 0 x 1.25" in row["criterion"]
    # the other Table 1 claim keeps the default tolerance
    weights = combined.set_index("claim_id").loc["table1_weights_L2"]
    assert "0.15 x 0.35" in weights["criterion"] and "at least 2" in weights["criterion"]
    assert set(combined["scale"]) == {"tiny"}
    geiger_rows = combined[combined["study"] == "geiger"]
    assert geiger_rows["data_source"].str.contains("not MNIST").all()
    assert combined["software_versions"].str.contains('"torch"').all()


def _chromium():
    if not CHROMIUM_SH.exists():
        pytest.skip(f"{CHROMIUM_SH} is missing")
    proc = subprocess.run(["bash", str(CHROMIUM_SH), "install"], capture_output=True,
                          text=True, timeout=600)
    if proc.returncode == CANNOT_RUN:
        lines = proc.stderr.strip().splitlines()
        pytest.skip(f"headless Chromium unavailable: {lines[-1] if lines else '?'}")
    assert proc.returncode == 0, f"chromium.sh install failed:\n{proc.stderr}"
    paths = dict(line.split("=", 1) for line in proc.stdout.split() if "=" in line)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[test]')")
    opts = webdriver.ChromeOptions()
    opts.binary_location = paths["chromium"]
    profile = tempfile.mkdtemp(prefix="depthlab-chromium-")
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", "--window-size=1600,1000"):
        opts.add_argument(arg)
    # Debian's chromedriver, never a downloaded one (Selenium Manager is not consulted when
    # the driver's path is given)
    driver = webdriver.Chrome(service=Service(paths["chromedriver"]), options=opts)
    driver.set_page_load_timeout(TIMEOUT_S)
    return driver, profile


@pytest.fixture(scope="module")
def browser():
    driver, profile = _chromium()
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _wait(driver, script, what, timeout=TIMEOUT_S):
    """Poll a JS expression until it is truthy (the report is a React app)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_report_opens_with_the_scorecard_and_every_figure(report_run, browser, tmp_path):

    work, _ = report_run
    res = work / "results"
    report = res / "report.html"
    assert report.stat().st_size > 100_000
    claims = pd.read_csv(res / "claims.csv", keep_default_na=False)

    browser.get(report.resolve().as_uri())
    _wait(browser, "return document.querySelectorAll('#claims-scorecard tr.claim').length",
          "the claims scorecard on the landing page")
    shot = tmp_path / "report_landing.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("DEPTHLAB_REPORT_SCREENSHOT"):  # keep a copy to look at
        shutil.copy(shot, os.environ["DEPTHLAB_REPORT_SCREENSHOT"])

    # the landing page's scorecard: one visible row per claim, each with its verdict
    rows = browser.execute_script("""
        return Array.from(document.querySelectorAll('#claims-scorecard tr.claim')).map(r => ({
            study: r.dataset.study, claim: r.dataset.claim, verdict: r.dataset.verdict,
            text: r.innerText, height: r.getBoundingClientRect().height}));""")
    assert [(r["study"], r["claim"], r["verdict"]) for r in rows] == list(
        zip(claims["study"], claims["claim_id"], claims["verdict"], strict=True))
    assert all(r["height"] > 5 and r["verdict"] in r["text"] for r in rows)
    failing = [r for r in rows if r["claim"] == "table1_kernel_L2"]
    assert failing and failing[0]["verdict"] == "fails"
    header = browser.execute_script(
        "return document.querySelector('#claims-scorecard').innerText")
    for text in ("tiny", "geiger", "not MNIST", "torch", "holds", "fails",
                 "not resolved at this scale"):
        assert text in header, text
    # the table sits on top of the landing page, in view
    top = browser.execute_script(
        "return document.querySelector('#claims-scorecard').getBoundingClientRect().top")
    assert 0 <= top < 400

    # every figure: listed under its study with its caption, and shown by the report's viewer
    # as a loaded image when its entry's view button is clicked, as a user would
    figures = browser.execute_script("""
        return Object.entries(results).filter(([p, r]) => r.mime_type === 'image/png')
            .map(([p, r]) => ({path: p, caption: r.caption}));""")
    expected = {f"results/{s}/figures/{f}.png" for s, figs in
                (("tiny", ["fig2"]), ("geiger", ["fig1c", "fig3a"])) for f in figs}
    assert {f["path"] for f in figures} == expected
    categories = browser.execute_script("return categories")
    assert any("results/claims.html" in paths for paths in categories["Claims scorecard"].values())
    for study in ("tiny", "geiger"):
        browser.execute_script("app.setView({navbarMode: 'menu'})")  # the home button
        _click(browser, f"//a[normalize-space()='{study}']")
        for fig in sorted(f["path"] for f in figures if f["path"].split("/")[1] == study):
            assert any(fig in paths for paths in categories[study].values())
            assert len(next(f["caption"] for f in figures if f["path"] == fig)) > 20, (
                f"{fig} has no caption")
            _click(browser, f"//tr[td[normalize-space()='{fig}']]//a[1]")
            width, height = _wait_img(browser, fig)
            assert width > 200 and height > 100, (fig, width, height)
    browser.save_screenshot(str(tmp_path / "report_figure.png"))

    # the scorecard's own entry opens the full table in the report's viewer
    browser.execute_script("app.setView({navbarMode: 'menu'})")
    _click(browser, "//a[normalize-space()='Claims scorecard']")
    _click(browser, "//tr[td[normalize-space()='results/claims.html']]//a[1]")
    frame = _wait(browser, "return document.querySelector('#app iframe')", "the viewer")
    browser.switch_to.frame(frame)
    try:
        n_rows = _wait(browser, "return document.querySelectorAll('tr.claim').length",
                       "the scorecard page in the viewer")
        assert n_rows == len(claims)
    finally:
        browser.switch_to.default_content()


def _click(driver, xpath):
    """Click an element as a user would: once it is there and the report's menu has finished
    sliding in. The menu animates (CSS transitions), so a click fired mid-slide lands on
    whatever is passing under the pointer (ElementClickInterceptedException) or on a node
    React has just replaced (stale); both are retried until TIMEOUT_S, then raised."""
    from selenium.common.exceptions import (
        ElementClickInterceptedException,
        NoSuchElementException,
        StaleElementReferenceException,
    )
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            element = driver.find_element(By.XPATH, xpath)
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
            element.click()
            return
        except (ElementClickInterceptedException, NoSuchElementException,
                StaleElementReferenceException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _wait_img(driver, path):
    """Wait until the viewer shows the figure's own image (its data URI), fully loaded."""
    script = """
        const want = results[arguments[0]].data_uri;
        const img = Array.from(document.querySelectorAll('#app img'))
            .find(i => i.getAttribute('src') === want);
        return img && img.complete && img.naturalWidth > 0
            ? [img.naturalWidth, img.naturalHeight] : null;"""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        value = driver.execute_script(script, path)
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"figure {path} did not load in the report viewer")
