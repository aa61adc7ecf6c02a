"""Scaling laws: fit loss against model size and forecast the loss at a larger size, honestly."""

from openevolve_genesys.scaling.fit import (
    HUBER_DELTA,
    NOISE_FLOOR,
    PRIOR_ALPHA_REL_SD,
    Forecast,
    LogLinearFit,
    PowerLawFit,
    fit_log_linear,
    fit_power_law,
    fit_summary,
    forecast_loss,
)
from openevolve_genesys.scaling.policy import FIXED_STEPS, DataPolicy
from openevolve_genesys.scaling.settings import ValueSettings
from openevolve_genesys.scaling.value import Valuation, value_design

__all__ = [
    "FIXED_STEPS",
    "DataPolicy",
    "HUBER_DELTA",
    "NOISE_FLOOR",
    "PRIOR_ALPHA_REL_SD",
    "Forecast",
    "LogLinearFit",
    "PowerLawFit",
    "Valuation",
    "ValueSettings",
    "fit_log_linear",
    "fit_power_law",
    "fit_summary",
    "forecast_loss",
    "value_design",
]
