import io
import json
import math

from rgpt2.progress import ProgressReporter, plot_curve, read_jsonl


def test_jsonl_events_parse_and_carry_the_common_keys(tmp_path):
    path = tmp_path / "sub" / "progress.jsonl"
    with ProgressReporter(4, path, bar=False) as rep:
        for step in range(1, 5):
            rep.step(step, loss=4.0 - step * 0.5, tokens=100, epoch=1 + (step > 2))
            if step == 2:
                rep.epoch(1, step=2, val_loss=math.log(40.0))
        rep.step(4, loss=float("nan"), tokens=0, val_loss=1.0)
        rep.done(out_dir="/x", best_val_ppl=40.0)
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["event"] for e in events] == ["step"] * 2 + ["epoch"] + ["step"] * 3 + ["done"]
    for e in events:
        for key in ("step", "total_steps", "epoch", "loss", "val_loss", "val_ppl", "eta_s"):
            assert key in e
        assert "tokens_per_s" in e
    epoch = events[2]
    assert epoch["epoch"] == 1 and abs(epoch["val_ppl"] - 40.0) < 1e-6
    assert epoch["loss"] == 3.0  # the last training loss of the epoch
    last_step = events[5]
    assert last_step["loss"] is None  # NaN is not JSON: written as null
    assert abs(last_step["val_ppl"] - math.e) < 1e-6
    assert events[3]["epoch"] == 2 and events[3]["tokens_per_s"] > 0
    assert events[3]["eta_s"] >= 0 and events[4]["eta_s"] == 0
    assert events[-1]["out_dir"] == "/x" and events[-1]["best_val_ppl"] == 40.0
    assert read_jsonl(path) == events


def test_half_written_line_is_skipped_and_error_event(tmp_path):
    path = tmp_path / "p.jsonl"
    rep = ProgressReporter(10, path, bar=False)
    rep.error("out of memory")
    rep.close()
    with open(path, "a") as f:
        f.write('{"event": "st')
    events = read_jsonl(path)
    assert [(e["event"], e["message"]) for e in events] == [("error", "out of memory")]


def test_terminal_bar_shows_speed(tmp_path):
    stream = io.StringIO()
    rep = ProgressReporter(3, bar=True, stream=stream, desc="fit")
    rep.step(1, loss=2.0, tokens=500)
    rep.step(2, loss=1.5, tokens=500)
    rep.close()
    out = stream.getvalue()
    assert "fit" in out and "tok/s" in out and "loss=1.500" in out


def test_plot_curve_writes_a_png(tmp_path):
    rep = ProgressReporter(2, bar=False)
    rep.step(1, loss=3.0, tokens=10)
    rep.epoch(1, step=1, val_loss=2.5)
    rep.step(2, loss=2.0, tokens=10)
    rep.epoch(2, step=2, val_loss=2.2)
    png = plot_curve(rep.history, tmp_path / "curve.png", title="t")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_curve([], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_eta_is_capped_by_a_time_budget():
    rep = ProgressReporter(1_000_000, bar=False, time_budget_s=5.0)
    rep.step(1, loss=1.0, tokens=10)
    record = rep.step(2, loss=1.0, tokens=10)
    assert 0 < record["eta_s"] <= 5.0


def test_summarize_lists_epochs_speed_and_the_end(tmp_path):
    from rgpt2.progress import summarize

    rep = ProgressReporter(2, bar=False)
    rep.step(1, loss=3.0, tokens=100)
    rep.step(2, loss=2.0, tokens=100)
    rep.epoch(1, step=2, val_loss=math.log(12.5))
    rep.done(out_dir="/m", best_val_ppl=12.5)
    text = summarize(rep.history)
    assert "12.50" in text and "tokens/s over 2 steps" in text
    assert text.splitlines()[-1].startswith('done: {"out_dir": "/m"')
