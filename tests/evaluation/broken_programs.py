"""Broken variants of the coefficient-dynamics baseline, one per check and per sandbox hazard."""

from openevolve_genesys.evaluation.program import framework_path, replace_class

TEMPLATE = framework_path("coefficient_dynamics").read_text()


def with_mixer_call(body: str, init: str = "") -> str:
    """The baseline with Mixer.__call__ replaced by ``body`` (indented 8 spaces) and extra __init__ lines."""
    text = f'''
class Mixer(nnx.Module):
    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        self.projections = Projections(d_model, n_heads, rngs=rngs)
        self.feature_map = FeatureMap(d_model, n_heads, rngs=rngs)
        self.dynamics = Dynamics(d_model, n_heads, rngs=rngs)
        self.coefficients = Coefficients(d_model, n_heads, rngs=rngs)
        self.readout = Readout(d_model, n_heads, rngs=rngs)
{init}
    def __call__(self, x):
        q, k, v = self.projections(x)
        q, k = self.feature_map(q, k)
        q, k, g = self.dynamics(x, q, k)
        alpha = self.coefficients(q, k, g)
        y = self.readout(alpha, v)
{body}
'''
    return replace_class(TEMPLATE, "Mixer", text)


BROKEN = {
    "shape": with_mixer_call("        return y[:, :, : y.shape[-1] // 2]"),
    "dtype": with_mixer_call("        return y.astype(jnp.float16)"),
    "non_finite": with_mixer_call("        return y / 0.0"),
    "non_finite_grad": with_mixer_call("        return y + 0.0 * jnp.sqrt(jnp.abs(x) - jnp.abs(x))"),
    "causality": with_mixer_call("        return y + jnp.mean(x, axis=1, keepdims=True)"),
    "param_count": with_mixer_call("        return y + self.extra(x)", "        self.extra = nnx.Linear(d_model, d_model, rngs=rngs)\n        self.extra2 = nnx.Linear(d_model, 4 * d_model, rngs=rngs)"),
    "signature": with_mixer_call("        return y", "        assert d_model < 0, 'this mixer cannot be built'"),
    "runtime": with_mixer_call("        return y @ jnp.ones((3, 3))"),
}

# Each raises or misbehaves only while training, not during the isolated checks (which use seq_len 16).
HAZARDS = {
    "loss_exploded": with_mixer_call("        if x.shape[1] > 16:\n            return y * jnp.inf\n        return y"),
    "exception": with_mixer_call("        if x.shape[1] > 16:\n            raise RuntimeError('boom at long sequences')\n        return y"),
    "sys_exit": with_mixer_call("        if x.shape[1] > 16:\n            import sys; sys.exit(3)\n        return y"),
    "os_exit": with_mixer_call("        if x.shape[1] > 16:\n            import os; os._exit(0)\n        return y"),
    "infinite_loop": with_mixer_call("        while x.shape[1] > 16:\n            pass\n        return y"),
    "huge_allocation": with_mixer_call("        if x.shape[1] > 16:\n            blob = bytearray(64 << 30)\n        return y"),
    "fork": with_mixer_call("        if x.shape[1] > 16:\n            import os, time\n            if os.fork() == 0:\n                time.sleep(3600)\n            raise RuntimeError('forked a sleeper')\n        return y"),
    "write_outside": with_mixer_call("        if x.shape[1] > 16:\n            open('/tmp/genesys_escape_test.txt', 'w').write('escaped')\n        return y"),
    "network": with_mixer_call("        if x.shape[1] > 16:\n            import socket; socket.create_connection(('203.0.113.1', 80), timeout=2)\n        return y"),
}
