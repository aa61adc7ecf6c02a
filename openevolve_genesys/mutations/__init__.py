"""The built-in offline mutation library: swaps one unit of a framework program for a catalogue alternative.

Used when no LLM key or endpoint is configured (``client.init_offline_client`` is an OpenEvolve LLM
client). Every alternative passes ``check_mixer`` and keeps N within 10% of the baseline on the smoke and
seed ladders, alone and in any combination. Alternatives per unit (baseline first):

coefficient_dynamics (5 x 7 x 13 x 9 x 6 = 24,570 designs)
  Projections   fused_qkv, conv4_qk, conv3_qkv, conv4_silu_qk, token_shift
  FeatureMap    identity, elu_plus_one, relu, softplus, softmax_features, cosine, qk_rmsnorm
  Dynamics      none, alibi, alibi_local, alibi_long, decay_0.9, decay_0.95, decay_0.99, retnet,
                learned_decay, forgetting_gate, mamba2_decay, rope, rope_retnet
  Coefficients  softmax, softmax_temperature, softcap, linear_l1, linear_maxabs, sigmoid_bias,
                sigmoid_mean, relu2_rowsum, relu_maxone
  Readout       plain, rmsnorm, layernorm, gate, rmsnorm_gate, skip
test_time_regression (6 x 12 x 10 x 5 = 3,600 designs)
  KeyValueMap   fused_qkv, conv4_qk, conv3_qkv, conv4_silu_qk, token_shift, qk_rmsnorm
  SampleWeights uniform, exponential_0.9, exponential_0.95, exponential_0.99, window_16, window_32,
                retnet, learned_rate, power_law, forget_gate, mamba2_gate, key_salience
  Regressor     nadaraya_watson, nw_bandwidth, nw_gaussian, nw_laplacian, nw_cosine, linear_memory,
                linear_memory_elu, delta_rule, delta_rule_unit, ridge
  Readout       plain, rmsnorm, layernorm, gate, rmsnorm_gate
matrix_mixer (6 x 11 x 8 x 6 = 3,168 designs)
  InputMap      fused_qku, conv4_qk, conv3_qkv, conv4_silu_qk, token_shift, qk_rmsnorm
  MatrixClass   low_rank, low_rank_cosine, low_rank_alibi, low_rank_buckets, toeplitz_buckets,
                toeplitz_exp_basis, semiseparable, semiseparable_fixed, cauchy, vandermonde,
                vandermonde_positional
  Normalisation softmax, softmax_temperature, l1_rows, max_abs_rows, causal_mean, sigmoid, relu2_rows,
                softplus_rows
  Readout       plain, rmsnorm, layernorm, gate, rmsnorm_gate, skip

Modules: ``catalogue/`` (one module per framework, ``shared`` for input maps and readouts), ``units``
(finding and comparing unit classes), ``mutator`` (``propose``, ``enumerate_designs``), ``client``.
"""

from openevolve_genesys.mutations.mutator import (
    Design,
    Mutation,
    design_space_size,
    enumerate_designs,
    identify,
    propose,
)

__all__ = ["Design", "Mutation", "design_space_size", "enumerate_designs", "identify", "propose"]
