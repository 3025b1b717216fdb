"""The training loop every framework's worker shares: warm-up, timed chunks, curve, budgets.

Step 1 and step 2 run alone (allocation/warm-up, then an estimate that sizes the chunks); after
that, chunks of K steps are timed, each closed by ``sync``, GC off
(``bench.measure.timing.run_chunk``, the chunk the micro-benchmarks time too). Evaluation and
resampling happen between chunks, outside the step clock (REFERENCES.md 4.1: resampling is
timed as its own phase, ``resample_s``). A method's ``resample_every = R`` draws new points
every R steps exactly, from step 2 on: chunks are at most R steps and never run past the next
draw (only full K-step chunks are timing samples), so the schedule does not depend on how fast
the machine is. With ``fused_steps = F > 1`` (``Backend.fused``) the sizing call after step 1
is one fused call of F steps where it fits, chunks are multiples of F, and each chunk is F-step
calls plus single steps for what is left before a draw or the budget (``run_chunk``), so the
schedule and the evaluation cadence are those of the unfused loop. The loop times itself too:
``harness_overhead`` (``overhead``) is the share of its wall time, evaluation, resampling and
checkpoints left out, that is not inside a timed chunk. The loop stops at the step budget, the
wall-clock budget (``max_seconds``), the target error (``target_rel_l2``, time to target
recorded), a non-finite loss, or the method's own stop rule (a ``stop`` step metric > 0).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass

from bench.measure.timing import Timer, chunk_size, no_gc, run_chunk, summarize

#: timing samples kept per case (beyond it, every other one is dropped and the stride doubles)
SAMPLE_CAP = 5000
#: loss-only curve points per case, at most about this many (evaluated points are always kept)
CURVE_LOSS_POINTS = 1000


@dataclass
class LoopResult:
    state: object
    metrics: dict
    loss: float
    stop: str | None
    done: int
    train_s: float
    resample_every: int


#: the file a worker reports its live progress to (set by the runner; absent: no reports)
PROGRESS_ENV = "PINNBENCH_PROGRESS"
#: at most one progress report per this many seconds (a report is one small atomic write)
PROGRESS_EVERY_S = 0.5


class Reporter:
    """Live progress of the case in flight, for the parent's display: ``{phase, step, steps,
    loss, train_s, max_seconds}`` written atomically to ``$PINNBENCH_PROGRESS`` between
    chunks (outside the step clock), at most every ``PROGRESS_EVERY_S``. A no-op without it."""

    def __init__(self, case):
        self.path = os.environ.get(PROGRESS_ENV) or None
        self.case, self.last = case, -math.inf

    def __call__(self, phase: str, step: int, loss: float, train_s: float, force: bool = False) -> None:
        now = time.monotonic()
        if self.path is None or (not force and now - self.last < PROGRESS_EVERY_S):
            return
        self.last = now
        info = {"phase": phase, "step": step, "steps": self.case.steps,
                "loss": loss if math.isfinite(loss) else None, "train_s": train_s,
                "max_seconds": self.case.max_seconds or None}
        tmp = f"{self.path}.tmp"
        try:
            with open(tmp, "w") as fh:
                json.dump(info, fh)
            os.replace(tmp, self.path)
        except OSError:  # progress is a courtesy: never fail a case over it
            self.path = None


def curve_extras(M, metrics) -> dict:
    """Step metrics a method asks to keep on the curve (``curve_keys``, e.g. causal min_w)."""
    return {k: float(metrics[k]) for k in M.curve_keys if k in metrics}


def enter(rec: dict, phase: str, checkpoint=None) -> None:
    """Enter ``phase``: the partial record on disk names it, so a kill or a timeout in it is
    reported in the right phase."""
    rec["phase"] = phase
    if checkpoint is not None:
        checkpoint()


def train(case, M, rec, step, sync, resample, evaluate, state, batch, window=None, checkpoint=None,
          fused=(1, None)) -> LoopResult:
    """Run the training of one case. ``step(state, batch) -> (state, metrics)``;
    ``sync(tree)`` waits for the device; ``resample(done) -> batch`` draws new points;
    ``evaluate(state) -> {rel_l2, ...}``. Fills ``rec["metrics"]`` and ``rec["curve"]``.
    ``window`` (optional, e.g. ``bench.measure.nvml.TimedWindow``) gets ``enter()`` just before
    and ``exit(k)`` just after every timed chunk of k steps, outside the step clock;
    ``checkpoint()`` saves the partial record at each phase change. ``fused = (F,
    fused_step)`` (``Backend.fused``): ``fused_step(state, batch)`` runs F steps in one call;
    chunks are then multiples of F where the schedule allows (``run_chunk``)."""
    t_loop = time.perf_counter_ns()
    m = rec["metrics"]
    report = Reporter(case)
    F, fused_step = fused if fused[1] is not None else (1, None)
    eval_s = save_s = 0.0

    def save():  # the partial record's fsynced write: a phase change, not loop bookkeeping
        nonlocal save_s
        with Timer() as t_c:
            checkpoint()
        save_s += t_c.s

    save = save if checkpoint is not None else None

    def evaluate_timed(state):  # evaluation is its own phase: outside the step clock and the overhead
        nonlocal eval_s
        with Timer() as t_e:
            out = evaluate(state)
        eval_s += t_e.s
        return out

    enter(rec, "first_step", save)
    report("first_step", 0, math.nan, 0.0, force=True)
    with Timer() as t_first:
        state, metrics = run_chunk(step, sync, state, batch, 1)
    m["first_step_s"] = t_first.s
    train_s, done, samples = t_first.s, 1, []
    resample_every = int(M.params.get("resample_every", 0) or 0)
    last_draw, draws = 0, []
    enter(rec, "train", save)
    loss = float(metrics["loss"])
    stop = None if math.isfinite(loss) else "nan"
    rec["curve"].append({"step": done, "train_s": train_s, "loss": loss, **curve_extras(M, metrics),
                         **evaluate_timed(state)})
    if stop is None and done < case.steps:  # one more call sizes the timed chunks: one step, or
        # one fused call of F steps where it fits before the budget and the first draw
        e = F if F > 1 and done + F <= case.steps and (not resample_every or done + F <= resample_every) else 1
        with Timer() as t_est:
            state, metrics = run_chunk(step, sync, state, batch, e, fused_step, F)
        done, train_s = done + e, train_s + t_est.s
        loss = float(metrics["loss"])
        stop = None if math.isfinite(loss) else "nan"
        m["second_step_s"] = t_est.s / e
    K = chunk_size(case.steps - done, case.timing_samples, m.get("second_step_s") or t_first.s)
    if F > 1:  # whole fused calls (a chunk cut short by the budget or a draw ends with single steps)
        K = max(F, K // F * F)
    if resample_every:
        K = min(K, resample_every)
    m["steps_per_sample"] = K
    next_eval = done + 1
    stride, n_full = 1, 0  # keep every stride-th full chunk's sample (at most SAMPLE_CAP kept)
    loss_every, last_point = max(1, case.steps // CURVE_LOSS_POINTS), done
    resample_s = 0.0
    while stop is None and done < case.steps:
        if resample_every and done - last_draw >= resample_every:
            with Timer() as t_r:
                batch = resample(done)
            resample_s += t_r.s
            draws.append(done - last_draw)
            last_draw = done
        k = min(K, case.steps - done)
        if resample_every:
            k = min(k, last_draw + resample_every - done)
        if window is not None:
            window.enter()
        with no_gc(), Timer() as t:
            state, metrics = run_chunk(step, sync, state, batch, k, fused_step, F)
        if window is not None:
            window.exit(k)
        done += k
        train_s += t.s
        if k == K:
            n_full += 1
            if n_full % stride == 0:
                samples.append(t.ms / k)
                if len(samples) >= 2 * SAMPLE_CAP:
                    samples, stride = samples[::2], stride * 2
        loss = float(metrics["loss"])
        report("train", done, loss, train_s)
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
        evaluated = bool(due or last or case.target_rel_l2)
        if evaluated:
            point.update(evaluate_timed(state))
        if evaluated or done - last_point >= loss_every:  # loss-only points are thinned
            rec["curve"].append(point)
            last_point = done
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
    m.update(overhead(time.perf_counter_ns() - t_loop, train_s, eval_s, resample_s, save_s))
    m["step_ms_samples"] = samples
    m.update(steps_done=done, train_s=train_s, final_loss=loss, stop_reason=stop or "steps",
             resamples=len(draws), resample_s=resample_s,
             resample_interval_mean=sum(draws) / len(draws) if draws else None)
    m.update({f"final_{k}": float(v) for k, v in metrics.items() if k != "loss"})
    return LoopResult(state, metrics, loss, stop, done, train_s, resample_every)


def overhead(loop_ns: int, train_s: float, eval_s: float, resample_s: float, checkpoint_s: float = 0.0) -> dict:
    """The harness's own share of the training loop: ``loop_wall_s`` (first step to the end of
    the loop) and ``harness_overhead`` = 1 - (sum of the timed steps, ``train_s``) / (loop wall
    time - evaluation - resampling - checkpoints), the time the loop spends on its own
    bookkeeping (clocks, GC switches, the curve, progress reports, host reads of the loss) as
    a fraction of the time it trains. The phases left out are recorded apart: ``eval_s`` (the
    curve's evaluations), ``resample_s`` and ``checkpoint_s`` (the partial record's fsynced
    writes at the two phase changes)."""
    wall = loop_ns / 1e9
    busy = wall - eval_s - resample_s - checkpoint_s
    return {"loop_wall_s": wall, "eval_s": eval_s, "checkpoint_s": checkpoint_s,
            "harness_overhead": 1.0 - train_s / busy if busy > 0 else None}


def errors(xp, pred, exact) -> dict:
    """rel. L2, RMS and max absolute error of ``pred`` against ``exact``; ``xp`` is
    ``jax.numpy`` or ``torch`` (the same calls exist in both)."""
    diff = (pred - exact).reshape(-1)
    ex = exact.reshape(-1)
    return {"rel_l2": float(xp.linalg.norm(diff) / xp.linalg.norm(ex)),
            "rms_abs": float(xp.sqrt(xp.mean(diff * diff))),
            "max_abs": float(xp.max(xp.abs(diff)))}


def finish_ok(case, rec, final_errors: dict) -> None:
    """Record the final evaluation (and time to target if only the last point reached it)."""
    m = rec["metrics"]
    m.update(final_errors)
    if case.target_rel_l2 and m.get("time_to_target_s") is None and m["rel_l2"] <= case.target_rel_l2:
        m["time_to_target_s"], m["steps_to_target"] = m["train_s"], m["steps_done"]
    rec["status"], rec["error"] = "ok", None
