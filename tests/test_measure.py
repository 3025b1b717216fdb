"""Measurement helpers: timing statistics, chunk sizing, XLA analysis, NVML fallback, RSS."""

import jax
import jax.numpy as jnp
import numpy as np

import methods
import pdes
from bench.measure import memory, timing, xla


def test_summarize_gives_median_and_iqr():
    s = timing.summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["step_ms"] == 3.0 and s["step_ms_iqr"] == 2.0 and s["n_samples"] == 5
    assert timing.summarize([])["step_ms"] is None


def test_chunk_size_targets_time_but_keeps_enough_samples():
    assert timing.chunk_size(1000, 9, 0.001, target_s=0.2) == 111  # 1000 // 9 caps 200
    assert timing.chunk_size(100000, 9, 0.001, target_s=0.2) == 200
    assert timing.chunk_size(1000, 9, 5.0) == 1
    assert timing.chunk_size(3, 9, 0.001) == 1


def test_run_chunk_runs_k_steps_then_syncs_once():
    calls = []

    def step(state, batch):
        calls.append(("step", state))
        return state + batch, {"loss": float(state)}

    def sync(tree):
        calls.append(("sync", tree))

    state, metrics = timing.run_chunk(step, sync, 0, 2, 3)
    assert (state, metrics) == (6, {"loss": 4.0})
    assert [c[0] for c in calls] == ["step"] * 3 + ["sync"]
    assert calls[-1][1] == (6, {"loss": 4.0})  # the sync waits on the chunk's last output


def test_time_calls_warms_up_syncs_every_call_and_takes_the_median():
    import time

    seen = []
    durations = iter([0.0, 0.002, 0.050, 0.002])  # the warm-up call, then three timed calls

    def fn():
        time.sleep(next(durations))
        return len(seen)

    ms = timing.time_calls(fn, seen.append, repeats=3)
    assert len(seen) == 4  # one warm-up + three timed calls, each synced
    assert 1.5 <= ms < 40  # the median: the 50 ms outlier does not count


def test_xla_analysis_of_a_matmul_counts_its_flops():
    f = jax.jit(lambda a, b: a @ b)
    a = jnp.ones((64, 128), jnp.float32)
    c = f.lower(a, a.T).compile()
    cost = xla.cost_stats(c)
    assert cost["flops_per_step"] == 2 * 64 * 128 * 64
    mem = xla.memory_stats(c)
    assert mem["xla_arg_bytes"] == 2 * 64 * 128 * 4 and mem["xla_out_bytes"] == 64 * 64 * 4


def test_spinn_needs_fewer_flops_and_temp_bytes_than_pinn_and_the_gap_grows():
    """heat (4+1)-d at equal collocation points, compile only (deterministic, no timing)."""
    pde = pdes.build("heat", 4)
    ratios = []
    for n in (3, 5):
        stats = {}
        for name, params in (("pinn", {"width": 32, "depth": 2}), ("spinn", {"width": 16, "depth": 2, "rank": 8})):
            M = methods.get(name)(pde, n, params)
            st = jax.eval_shape(M.init, jax.random.PRNGKey(0))
            b = jax.eval_shape(M.sample, jax.random.PRNGKey(1))
            c = jax.jit(M.step).lower(st, b).compile()
            stats[name] = {**xla.cost_stats(c), **xla.memory_stats(c)}
        ratios.append([stats["pinn"][k] / stats["spinn"][k] for k in ("flops_per_step", "xla_temp_bytes")])
    ratios = np.array(ratios)
    assert (ratios > 1).all()
    assert (ratios[1] > ratios[0]).all()


def test_nvml_sampler_reports_not_available_without_a_driver(monkeypatch):
    import pynvml

    class Fake:
        NVMLError = pynvml.NVMLError

        @staticmethod
        def nvmlInit():
            raise pynvml.NVMLError_LibraryNotFound()

    monkeypatch.setattr(memory, "_pynvml", lambda: Fake)
    s = memory.NvmlSampler().start()
    peaks = s.stop()
    assert not s.available and peaks["nvml_peak_bytes"] is None
    assert "NVML not available" in peaks["nvml_reason"]
    assert memory.nvml_device_count() == 0


def test_peak_rss_grows_with_an_allocation():
    """In a fresh process, touching 256 MiB puts the reported peak at least that far above the
    RSS before it, and not absurdly far: fails if the units (KiB vs bytes) or the source were wrong."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import numpy as np, psutil; from bench.measure import memory as m; "
            "b = psutil.Process().memory_info().rss; "
            "x = np.ones(256 * 2**20 // 8); x += 1; print(b, m.peak_rss_bytes())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout.split()
    before, after = map(int, out)
    assert 250 * 2**20 <= after - before and after < 8 * 2**30
    assert memory.available_host_bytes() > 0
