"""Checks of an evolved mixer, each failing with a named ``ProgramError`` whose message goes to the LLM.

The mixer is checked alone, on tiny inputs, before any training: signature, shape and dtype,
finite outputs and gradients, causality (by perturbation and by gradient), and the parameter budget
at every rung (by shape evaluation, with no compute). A layer-aware program (a hybrid stack) is
checked at every layer of every depth it trains at, so a later layer cannot hide a leak. Step time
and the loss curve are checked during and after training (``StepTimeGuard``, ``check_learning``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from openevolve_genesys.evaluation.program import ProgramError
from openevolve_genesys.training.loop import ChunkProgress, RungResult
from openevolve_genesys.training.model import CausalSelfAttention, build_model, count_parameters, layer_slots
from openevolve_genesys.training.profiles import LadderProfile


@dataclass(frozen=True)
class CheckSettings:
    d_model: int = 32
    n_heads: int = 4
    seq_len: int = 16
    batch: int = 2
    causal_atol: float = 1e-5
    param_tolerance: float = 0.1  # |N_design / N_baseline - 1| allowed at every rung
    max_step_time_ratio: float = 3.0  # design step time / baseline step time (CPU time on a CPU, wall time on an accelerator)
    min_loss_drop: float = 0.1  # nats below chance (ln vocab) the final eval loss must reach


def _build(build_mixer: Callable, d_model: int, n_heads: int, seed: int = 0) -> nnx.Module:
    try:
        return build_mixer(d_model, n_heads, rngs=nnx.Rngs(seed))
    except Exception as err:
        raise ProgramError("signature", f"build_mixer({d_model}, {n_heads}, rngs=...) raised "
                                        f"{type(err).__name__}: {err}") from None


def _runtime_error(x: jax.Array, err: Exception) -> ProgramError:
    return ProgramError("runtime", f"mixer(x) with x of shape {tuple(x.shape)} raised {type(err).__name__}: {err}")


def _shape_of(mixer: nnx.Module, x: jax.Array) -> jax.ShapeDtypeStruct:
    """What ``mixer(x)`` returns, by tracing only; an exception in evolved code is a named runtime failure."""
    try:
        return nnx.eval_shape(lambda m, inp: m(inp), mixer, x)
    except Exception as err:
        raise _runtime_error(x, err) from None


def check_mixer(build_mixer: Callable, settings: CheckSettings = CheckSettings(),
                depths: Sequence[int] | None = None) -> None:
    """Shape, dtype, finiteness of outputs and gradients, and causality, on tiny inputs.

    A layer-aware ``build_mixer`` is checked for every (layer, n_layers) of ``depths`` (default: its declared
    ``depths``); a failure names the layer."""
    try:
        slots = layer_slots(build_mixer, depths)
    except ValueError as err:
        raise ProgramError("signature", str(err)) from None
    if slots is None:
        _check_one(build_mixer, settings)
        return
    for layer, n_layers in slots:
        try:
            _check_one(functools.partial(build_mixer, layer=layer, n_layers=n_layers), settings)
        except ProgramError as err:
            raise ProgramError(err.kind, f"layer {layer} of {n_layers}: {err.message}") from None


def _check_one(build_mixer: Callable, settings: CheckSettings) -> None:
    s = settings
    mixer = _build(build_mixer, s.d_model, s.n_heads)
    # Inputs from numpy: eager jax.random would compile each of its primitives in every fresh sandbox child.
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((s.batch, s.seq_len, s.d_model), dtype=np.float32))
    y = _shape_of(mixer, x)
    if not hasattr(y, "shape") or tuple(y.shape) != tuple(x.shape):
        raise ProgramError("shape", f"the mixer must return [batch, seq, d_model] = {tuple(x.shape)}, "
                                    f"got {getattr(y, 'shape', type(y).__name__)}")
    if y.dtype != x.dtype:
        raise ProgramError("dtype", f"the mixer must return the input dtype {x.dtype}, got {y.dtype}")
    t = s.seq_len // 2
    try:
        probe = _probe(mixer, x, t, rng)
    except Exception as err:  # traced once for the shape, evolved code can still fail where values matter
        raise _runtime_error(x, err) from None
    if not bool(probe.finite_output):
        raise ProgramError("non_finite", "the mixer's output has NaN or Inf on a standard normal input; "
                                         "mask with a large finite negative, keep decays in log space, add eps")
    if not bool(probe.finite_grads):
        raise ProgramError("non_finite_grad", "gradients through the mixer have NaN or Inf "
                                              "(often sqrt/log/division at 0, or exp of an unbounded logit)")
    leak = float(probe.leak)
    if leak > s.causal_atol:
        raise ProgramError("causality", f"changing inputs after position {t} changed outputs at positions <= {t} "
                                        f"by up to {leak:.3g}: the mixer sees the future (mask or use a causal scan)")
    flow = float(probe.flow)
    if flow > s.causal_atol:
        raise ProgramError("causality", f"gradient flows from outputs at positions <= {t} to later inputs "
                                        f"(max |d y / d x_future| = {flow:.3g}): the mixer is not causal")


class _Probe(NamedTuple):
    finite_output: jax.Array
    finite_grads: jax.Array
    leak: jax.Array  # max change of outputs <= t when only inputs > t change
    flow: jax.Array  # max gradient from outputs <= t to inputs > t


def _probe(mixer: nnx.Module, x: jax.Array, t: int, rng: np.random.Generator) -> _Probe:
    """Every check's numbers from one compiled program: a fresh sandbox child pays one XLA compile instead of
    the eager compile of every primitive (about 8 s to about 1 s on a CPU)."""
    graphdef, params, rest = nnx.split(mixer, nnx.Param, ...)
    cotangent = jnp.asarray(rng.standard_normal(x.shape, dtype=np.float32))
    future = np.zeros(x.shape, np.float32)
    future[:, t + 1:] = 3.0 * rng.standard_normal(future[:, t + 1:].shape, dtype=np.float32)
    changed = x + jnp.asarray(future)

    @jax.jit
    def run(p, rest_state, inp, inp_changed):
        def apply(p_, i):
            return nnx.merge(graphdef, p_, rest_state)(i)

        y = apply(p, inp)
        grads, grad_x = jax.grad(lambda p_, i: jnp.sum(apply(p_, i) * cotangent), argnums=(0, 1))(p, inp)
        finite_grads = jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads) + [grad_x]]))
        leak = jnp.max(jnp.abs(apply(p, inp_changed)[:, : t + 1] - y[:, : t + 1]))
        # Perturbation can miss leaks that cancel; gradients from an earlier output must reach no later input.
        past_grad = jax.grad(lambda i: jnp.sum(apply(p, i)[:, : t + 1]))(inp)
        flow = jnp.max(jnp.abs(past_grad[:, t + 1:]))
        return _Probe(jnp.all(jnp.isfinite(y)), finite_grads, leak, flow)

    return run(params, rest, x, changed)


def check_parameter_budget(build_mixer: Callable, profile: LadderProfile, settings: CheckSettings = CheckSettings()
                           ) -> dict[str, tuple[int, int]]:
    """N of the design vs the baseline at every rung (shapes only); returns {rung: (design N, baseline N)}."""
    counts = {}
    for rung in profile.rungs:
        def n_params(mixer):
            model = nnx.eval_shape(lambda: build_model(profile.vocab_size, rung.d_model, rung.n_layers, rung.n_heads,
                                                       mixer=mixer))
            return count_parameters(model)[0]

        try:
            design = n_params(build_mixer)
        except Exception as err:
            raise ProgramError("signature", f"building the model at rung {rung.name} (d_model={rung.d_model}, "
                                            f"n_heads={rung.n_heads}) raised {type(err).__name__}: {err}") from None
        baseline = n_params(CausalSelfAttention)
        counts[rung.name] = (design, baseline)
        if abs(design / baseline - 1.0) > settings.param_tolerance:
            raise ProgramError("param_count", f"at rung {rung.name} the model has N = {design:,} non-embedding "
                                              f"parameters, the baseline {baseline:,}; stay within "
                                              f"{settings.param_tolerance:.0%} so the scaling comparison is fair")
    return counts


class StepTimeGuard:
    """Chunk callback that stops training once the design is much slower than the baseline's recorded speed.

    On a CPU the speeds compared are tokens per second of the process's CPU time, when the baseline's record
    has it: wall time there depends on what else shares the cores (a baseline trained on a quiet machine made
    ordinary designs trained beside a test suite look 3.5-5x slower), CPU time hardly does. On an accelerator the
    host thread mostly waits for the device, so its CPU time says little and wall time is compared."""

    def __init__(self, baseline_tokens_per_second: float | None, tokens_per_step: int, max_ratio: float,
                 after_steps: int = 1, baseline_tokens_per_cpu_second: float | None = None):
        self.baseline = baseline_tokens_per_second
        self.baseline_cpu = baseline_tokens_per_cpu_second
        self.tokens_per_step = tokens_per_step
        self.max_ratio = max_ratio
        self.after_steps = after_steps

    def ratio(self, progress: ChunkProgress) -> float | None:
        """The baseline's speed over the design's so far (None: nothing to compare yet)."""
        if progress.step < self.after_steps:
            return None
        tokens = progress.step * self.tokens_per_step
        if self.baseline_cpu and progress.cpu_seconds > 0:
            return self.baseline_cpu * progress.cpu_seconds / tokens
        if self.baseline and progress.seconds > 0:
            return self.baseline * progress.seconds / tokens
        return None

    def __call__(self, progress: ChunkProgress) -> None:
        ratio = self.ratio(progress)
        if ratio is not None and ratio > self.max_ratio:
            raise ProgramError("step_time", f"a training step takes {ratio:.1f}x the baseline's (limit "
                                            f"{self.max_ratio:g}x) at rung {progress.rung}: use a parallel form "
                                            "(matrix or chunked scan) instead of a per-token Python loop")


def check_learning(result: RungResult, vocab_size: int, settings: CheckSettings = CheckSettings()) -> None:
    if result.diverged or not math.isfinite(result.final_eval_loss):
        raise ProgramError("loss_exploded", f"training diverged at rung {result.rung} by step {result.steps} "
                                            "(non-finite loss): bound logits, normalise q/k, keep decays <= 0")
    chance = math.log(vocab_size)
    if result.final_eval_loss > chance - settings.min_loss_drop:
        raise ProgramError("loss_not_falling", f"at rung {result.rung} the eval loss ended at "
                                               f"{result.final_eval_loss:.3f}, no better than chance "
                                               f"(ln {vocab_size} = {chance:.3f}): the mixer passes no usable signal")


def describe_counts(counts: dict[str, tuple[int, int]]) -> str:
    return ", ".join(f"{r}: {d:,} vs {b:,}" for r, (d, b) in counts.items())
