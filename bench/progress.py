"""What a run shows while it runs: one renderer for the CLI and the Python API.

On a terminal, a rich live display: a bar over the suite's cases (done / total, elapsed, ETA)
and, for the case in flight, its phase (start, compile, first step, train), step count, current
loss and training time against its budget, fed by the worker's progress reports
(``bench.loop.Reporter`` -> ``RunState.on_tick``). Elsewhere (a pipe, a CI log) plain lines:
one when a case starts, the outcome when it ends (with elapsed time and ETA), and a heartbeat
line for a case that has been running a long time, so a log never goes quiet for long.

The ETA is the sum of the estimates (``bench.estimate``) of the cases still to run, scaled by
how long the finished cases took against their own estimates, less the time the current case
has run so far; where a case has no estimate, the mean wall time of the finished cases stands in.
"""

from __future__ import annotations

import time

#: how the worker's phases read on screen (bench.worker writes them into its partial record)
PHASES = {"start": "starting (import, trace, compile)", "compile": "compiling",
          "compiled": "compiled", "first_step": "first step", "train": "train"}
#: plain mode: a heartbeat line for the case in flight at most this often (seconds)
HEARTBEAT_S = 60.0


def fmt_duration(s: float | None) -> str:
    """``0:07``, ``3:05``, ``1:02:03`` (h:mm:ss), ``?`` when unknown."""
    if s is None or s != s:
        return "?"
    s = int(round(max(0.0, s)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def one_line(rec: dict) -> str:
    """A finished case in one line: its status and headline figures."""
    from bench.report.tables import fmt

    m = rec.get("metrics", {})
    st = rec.get("status")
    if st != "ok":
        return f"{str(st).upper()}: {rec.get('error')}"
    return (f"ok  {fmt(m.get('step_ms'))} ms/step  temp {fmt(m.get('xla_temp_bytes'), 'bytes')}  "
            f"rel_l2 {fmt(m.get('rel_l2'))}")


def tick_text(info: dict) -> str:
    """The case in flight: ``train step 120/2000  loss 3.2e-02  train 12.3 s / 60 s``."""
    from bench.report.tables import fmt

    phase = info.get("phase") or "start"
    parts = [PHASES.get(phase, phase)]
    if info.get("step") is not None and phase in ("first_step", "train"):
        parts.append(f"step {info['step']}/{info.get('steps', '?')}")
    if info.get("loss") is not None:
        parts.append(f"loss {fmt(info['loss'])}")
    if info.get("train_s") is not None and phase == "train":
        budget = f" / {info['max_seconds']:g} s" if info.get("max_seconds") else ""
        parts.append(f"train {info['train_s']:.1f} s{budget}")
    if info.get("wall_s") is not None:
        parts.append(f"wall {fmt_duration(info['wall_s'])}")
    return "  ".join(parts)


class RunProgress:
    """``progress(event, case, rec)`` for the executors ("start", "skip", "done") and
    ``tick(case, info)`` for the case in flight. ``live``: the rich display (default: when
    the console is a terminal)."""

    def __init__(self, console, cases, estimates: dict | None = None, live: bool | None = None,
                 clock=time.monotonic):
        self.console, self.clock = console, clock
        self.ids = [c.case_id for c in cases]
        self.total = len(self.ids)
        self.est = {k: e.seconds for k, e in (estimates or {}).items()}
        self.live = console.is_terminal if live is None else live
        self.t0 = clock()
        self.i, self.finished, self.walls, self.measured = 0, set(), [], {}
        self.current, self.case_t0, self.open = None, None, None
        self.last_beat = None
        self._bar = self._task = None
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("elapsed {task.fields[elapsed]}  ETA {task.fields[eta]}"),
                                 console=console, transient=True, auto_refresh=True)
            self._task = self._bar.add_task("cases", total=self.total, elapsed="0:00", eta="?")
            self._bar.start()

    # -- figures ----------------------------------------------------------------------------
    def elapsed(self) -> float:
        return self.clock() - self.t0

    def eta(self) -> float | None:
        """Seconds left: estimates of the cases not finished, the current one's time so far
        taken off its own estimate."""
        mean = sum(self.walls) / len(self.walls) if self.walls else None
        # estimates calibrated by how the finished cases compared with theirs (a loaded machine)
        pairs = [(w, self.est[c]) for c, w in self.measured.items() if self.est.get(c)]
        scale = sum(w for w, _ in pairs) / sum(e for _, e in pairs) if pairs else 1.0
        left = 0.0
        for cid in self.ids:
            if cid in self.finished:
                continue
            e = self.est.get(cid)
            e = e * scale if e is not None else mean
            if e is None:
                return None
            if cid == self.current and self.case_t0 is not None:
                e = max(0.0, e - (self.clock() - self.case_t0))
            left += e
        return left

    def status(self) -> str:
        return f"elapsed {fmt_duration(self.elapsed())}, ETA {fmt_duration(self.eta())}"

    # -- events -----------------------------------------------------------------------------
    def __call__(self, event: str, case, rec) -> None:
        from rich.markup import escape

        if event in ("start", "skip"):
            self.i += 1
        prefix = f"[{self.i}/{self.total}] {case.case_id}"
        if event == "start":
            self.current, self.case_t0, self.last_beat = case.case_id, self.clock(), self.clock()
            if self.live:
                self._update(f"{case.case_id}: start")
            else:
                self._close_open(case.case_id)
                self.console.print(escape(prefix) + " ...", end=" ")
                self.open = case.case_id
            return
        self.finished.add(case.case_id)
        if event == "skip":
            self._close_open(case.case_id)
            self._print(escape(f"{prefix} already recorded ({rec['status']}), skipped"))
        else:
            if self.case_t0 is not None and self.current == case.case_id:
                self.walls.append(self.clock() - self.case_t0)
                self.measured[case.case_id] = self.walls[-1]
            self.current = self.case_t0 = None
            line = escape(f"{one_line(rec)}  [{self.status()}]")
            if self.live:
                self._print(escape(prefix) + " " + line)
            else:
                if self.open != case.case_id:
                    self._close_open(case.case_id)
                    self.console.print(escape(f"{case.case_id}:"), end=" ")
                self.console.print(line)
                self.open = None
        if self.live:
            self._update(None)

    def tick(self, case, info: dict) -> None:
        from rich.markup import escape

        if self.live:
            self._update(f"{case.case_id}: {tick_text(info)}")
        elif self.last_beat is not None and self.clock() - self.last_beat >= HEARTBEAT_S:
            self.last_beat = self.clock()
            self._close_open(None)
            self.console.print(escape(f"    {case.case_id}: {tick_text(info)}  [{self.status()}]"))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    # -- helpers ----------------------------------------------------------------------------
    def _update(self, description: str | None) -> None:
        kw = {"completed": len(self.finished), "elapsed": fmt_duration(self.elapsed()),
              "eta": fmt_duration(self.eta())}
        if description is not None:
            kw["description"] = description
        elif self.current is None:
            kw["description"] = "cases"
        self._bar.update(self._task, **kw)

    def _print(self, text: str) -> None:
        (self._bar.console if self._bar is not None else self.console).print(text)

    def _close_open(self, case_id) -> None:
        """End an open "[i/N] id ..." line before anything else prints (parallel jobs)."""
        if self.open is not None and self.open != case_id:
            self.console.print("")
            self.open = None
