"""components.ui.run_job: a gated job's result, or its refusal as a warning (never a traceback)."""

from streamlit.testing.v1 import AppTest


def _script():
    import streamlit as st

    from components.ui import run_job
    from core.jobs import JobGate, JobRefused

    def busy(progress):
        progress(0.5, "half way")
        raise JobRefused("The server is busy; please try again in a minute.")

    def works(progress):
        progress(0.5, "half way")
        return 42

    gate = JobGate("test job", max_running=1, per_session=1, time_limit_s=0.01)

    def too_slow(progress):
        import time

        with gate.slot("s") as deadline:
            time.sleep(0.05)
            deadline.check()

    st.write(f"works: {run_job(works)}")
    st.write(f"busy: {run_job(busy)}")
    st.write(f"too slow: {run_job(too_slow)}")


def test_run_job_returns_the_result_or_shows_why_not():
    at = AppTest.from_function(_script).run(timeout=60)
    assert not at.exception
    texts = [m.value for m in at.markdown]
    assert "works: 42" in texts and "busy: None" in texts and "too slow: None" in texts
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 2 and "server is busy" in warnings[0] and "test job" in warnings[1]
    # every progress bar was removed
    assert not at.get("progress")
