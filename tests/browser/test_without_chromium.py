"""Without a Chromium the browser tests skip, with the reason, except under CI."""

from __future__ import annotations

import pytest

from tests.browser.conftest import check_chromium

MISSING = "/nonexistent/chromium"


def test_a_developer_without_chromium_is_told_why_the_tests_skip(monkeypatch):
    monkeypatch.delenv("CI", raising=False)

    with pytest.raises(pytest.skip.Exception, match="no Chromium at /nonexistent/chromium"):
        check_chromium(MISSING)


def test_ci_without_chromium_fails(monkeypatch):
    monkeypatch.setenv("CI", "true")

    with pytest.raises(pytest.fail.Exception, match="cannot run under CI"):
        check_chromium(MISSING)


def test_an_installed_chromium_passes_the_check(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "true")
    chromium = tmp_path / "chromium"
    chromium.touch()

    check_chromium(str(chromium))
