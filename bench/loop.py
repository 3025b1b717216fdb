"""The training loop every framework's worker shares: warm-up, timed chunks, curve, budgets.

Step 1 and step 2 run alone (allocation/warm-up, then an estimate that sizes the chunks);
after that, chunks of K steps are timed, each closed by ``sync``, GC off. Resampling and
evaluation happen between chunks, outside the clock: a method's ``resample_every`` draws new
points at the first chunk boundary at least that many steps after the last draw (so a value below
K means once per chunk); the record says what happened (``resamples``,
``resample_interval_mean``). The loop stops at the step budget, the wall-clock budget
(``max_seconds``), the target error (``target_rel_l2``, time to target recorded), a non-finite
loss, or the method's own stop rule (a ``stop`` step metric > 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.measure.timing import Timer, chunk_size, no_gc, summarize


@dataclass
class LoopResult:
    state: object
    metrics: dict
    loss: float
    stop: str | None
    done: int
    train_s: float
    K: int
    resample_every: int


def curve_extras(M, metrics) -> dict:
    """Step metrics a method asks to keep on the curve (``curve_keys``, e.g. causal min_w)."""
    return {k: float(metrics[k]) for k in getattr(M, "curve_keys", ()) if k in metrics}


def train(case, M, rec, step, sync, resample, evaluate, state, batch) -> LoopResult:
    """Run the training of one case. ``step(state, batch) -> (state, metrics)``;
    ``sync(tree)`` waits for the device; ``resample(done) -> batch`` draws new points;
    ``evaluate(state) -> {rel_l2, ...}``. Fills ``rec["metrics"]`` and ``rec["curve"]``."""
    m = rec["metrics"]
    rec["phase"] = "first_step"
    with Timer() as t_first:
        state, metrics = step(state, batch)
        sync((state, metrics))
    m["first_step_s"] = t_first.s
    train_s, done, samples = t_first.s, 1, []
    resample_every = int(M.params.get("resample_every", 0) or 0)
    last_draw, draws = 0, []
    rec["phase"] = "train"
    loss = float(metrics["loss"])
    stop = None if math.isfinite(loss) else "nan"
    rec["curve"].append({"step": done, "train_s": train_s, "loss": loss, **curve_extras(M, metrics),
                         **evaluate(state)})
    if stop is None and done < case.steps:  # one more step alone sizes the timed chunks
        with Timer() as t_est:
            state, metrics = step(state, batch)
            sync((state, metrics))
        done, train_s = done + 1, train_s + t_est.s
        loss = float(metrics["loss"])
        stop = None if math.isfinite(loss) else "nan"
        m["second_step_s"] = t_est.s
    K = chunk_size(case.steps - done, case.timing_samples, m.get("second_step_s") or t_first.s)
    m["steps_per_sample"] = K
    next_eval = done + 1
    while stop is None and done < case.steps:
        k = min(K, case.steps - done)
        if resample_every and done - last_draw >= resample_every:
            batch = resample(done)
            draws.append(done - last_draw)
            last_draw = done
        with no_gc(), Timer() as t:
            for _ in range(k):
                state, metrics = step(state, batch)
            sync((state, metrics))
        done += k
        train_s += t.s
        if k == K:
            samples.append(t.ms / k)
        loss = float(metrics["loss"])
        if not math.isfinite(loss):
            stop = "nan"
            break
        point = {"step": done, "train_s": train_s, "loss": loss, **curve_extras(M, metrics)}
        last = done >= case.steps or (case.max_seconds and train_s >= case.max_seconds)
        if case.eval_every:
            due = done % case.eval_every < k
        else:  # log-spaced curve: about ten points per decade of steps
            due = done >= next_eval
            if due:
                next_eval = int(done * 1.25) + 1
        if due or last or case.target_rel_l2:
            point.update(evaluate(state))
        rec["curve"].append(point)
        if case.target_rel_l2 and point.get("rel_l2", math.inf) <= case.target_rel_l2:
            m["time_to_target_s"], m["steps_to_target"] = train_s, done
            stop = "target"
            break
        if case.max_seconds and train_s >= case.max_seconds:
            stop = "max_seconds"
            break
        if float(metrics.get("stop", 0.0)) > 0:  # the method's own stop rule (causal schedule)
            stop = "method"
            break
    m.update(summarize(samples))
    m["step_ms_samples"] = samples
    m.update(steps_done=done, train_s=train_s, final_loss=loss, stop_reason=stop or "steps",
             resamples=len(draws), resample_interval_mean=sum(draws) / len(draws) if draws else None)
    m.update({f"final_{k}": float(v) for k, v in metrics.items() if k != "loss"})
    return LoopResult(state, metrics, loss, stop, done, train_s, K, resample_every)


def finish_ok(case, rec, final_errors: dict) -> None:
    """Record the final evaluation (and time to target if only the last point reached it)."""
    m = rec["metrics"]
    m.update(final_errors)
    if case.target_rel_l2 and m.get("time_to_target_s") is None and m["rel_l2"] <= case.target_rel_l2:
        m["time_to_target_s"], m["steps_to_target"] = m["train_s"], m["steps_done"]
    rec["status"], rec["error"] = "ok", None
