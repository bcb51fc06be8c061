"""The gateway's web page in headless Chromium (Debian's package, driven by Playwright): it asks for speech
and plays it with Web Audio while it streams, in an AudioContext at the stream's sample rate; the page reports
frames, audio seconds and time to first audio, and the AudioContext's clock shows the audio was rendered.
What the page's playback sounds like is measured in test_page_audio.py."""

from __future__ import annotations

import pytest

from tests.gateway.browser import gateway_page

pytestmark = pytest.mark.slow


def test_page_plays_the_stream(stack: dict[str, object]) -> None:
    with gateway_page(str(stack["base"])) as page:
        page.fill("#key", str(stack["a"]))
        page.dispatch_event("#key", "change")
        page.wait_for_function("document.querySelectorAll('#voice option').length > 1", timeout=10_000)
        page.click("#speak")
        page.wait_for_function(
            "window.chorusReport.state === 'done' || window.chorusReport.state === 'failed'", timeout=30_000
        )
        report = page.evaluate("window.chorusReport")
        assert report["state"] == "done", report
        assert report["frames"] > 0 and report["ttfaMs"] > 0
        assert abs(report["playedSeconds"] - 1.2) < 0.05, report  # two segments of 0.6 s
        # played at the stream's own rate: nothing in the page resamples (tests/gateway/test_page_audio.py)
        assert report["sampleRate"] == report["contextRate"] == 24_000, report
        start = page.evaluate("window.chorusAudioClock()")
        page.wait_for_timeout(1500)
        assert page.evaluate("window.chorusAudioClock()") - start > 1.0, "the audio clock runs: audio renders"
        assert "first audio after" in page.inner_text("#status")
