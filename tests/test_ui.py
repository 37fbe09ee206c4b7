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


def _stoppable():
    import streamlit as st

    from components.ui import run_job, stopped_job

    mode = st.session_state.setdefault("mode", "stop")
    if not st.session_state.get("ran"):
        st.session_state.ran = True

        def job(progress):
            progress(0.25, "epoch 1/4", partial=[0.5])
            if mode == "stop":
                st.rerun()  # what the Stop button does: a rerun that ends the script at this yield
            if mode == "error":
                raise ValueError("a real bug")
            progress(1.0, "epoch 4/4", partial=[0.5, 0.6, 0.7, 0.8])
            return "finished"

        try:
            st.write(f"result: {run_job(job, stop='train')}")
        except ValueError:
            st.write("error raised")
    out = stopped_job("train")
    st.write(f"partial: {None if out is None else out['partial']}")


def test_a_stopped_job_is_reported_with_what_it_had_done():
    at = AppTest.from_function(_stoppable).run(timeout=60)
    assert not at.exception
    texts = [m.value for m in at.markdown]
    assert "partial: [0.5]" in texts  # the rerun ended the job; the page says how far it got
    note = [i.value for i in at.info]
    assert len(note) == 1 and "Stopped" in note[0] and "25%" in note[0] and "epoch 1/4" in note[0]
    assert not at.get("progress") and not at.button  # the bar and its Stop button went with the job


def test_a_finished_or_failed_job_is_not_reported_as_stopped():
    for mode, expected in (("finish", "result: finished"), ("error", "error raised")):
        at = AppTest.from_function(_stoppable)
        at.session_state["mode"] = mode
        at.run(timeout=60)
        assert not at.exception
        texts = [m.value for m in at.markdown]
        assert expected in texts and "partial: None" in texts, (mode, texts)
        assert not at.info and not at.button


def _trainer():
    import streamlit as st

    from components.ui import train_button

    seed = st.session_state.setdefault("seed", 0)
    calls = st.session_state.setdefault("calls", [])

    def start(progress):
        calls.append(seed)
        progress(1.0, "done")
        return {"seed": seed}

    result, stopped = train_button("Train", key="t.train", settings=(seed,), start=start, keep=2)
    st.write(f"result: {result}")
    st.write(f"stopped: {stopped}")


def test_train_button_remembers_a_bounded_number_of_results():
    at = AppTest.from_function(_trainer).run(timeout=60)
    assert "result: None" in [m.value for m in at.markdown]
    at.button(key="t.train").click().run(timeout=60)
    assert "result: {'seed': 0}" in [m.value for m in at.markdown]
    at.run(timeout=60)
    assert at.button(key="t.train").disabled  # the same settings are not trained twice
    for seed in (1, 2):
        at.session_state["seed"] = seed
        at.run(timeout=60)
        at.button(key="t.train").click().run(timeout=60)
    assert at.session_state["calls"] == [0, 1, 2]
    at.session_state["seed"] = 0  # kept only the last two: seed 0 was dropped
    at.run(timeout=60)
    assert "result: None" in [m.value for m in at.markdown] and not at.button(key="t.train").disabled
    at.session_state["seed"] = 2
    at.run(timeout=60)
    assert "result: {'seed': 2}" in [m.value for m in at.markdown]
