"""Transmit probability of a stochastic SFQ synapse as a function of its bias current.

A stochastic synapse is a Josephson junction (the *decision junction*) biased just
below the point where an incoming SFQ pulse switches it. Thermal (Johnson) noise of
the shunt resistor makes switching random: the junction passes the pulse (switches,
2*pi phase slip) with probability ``p(I_b)`` and blocks it otherwise. In the gray
zone this probability is an S-curve of the bias current. We model it as a probit
(Gaussian CDF) curve::

    p(I_b) = Phi((I_b - I_50) / sigma)        Phi = standard normal CDF

with ``I_50`` (uA) the bias at which half of the pulses pass and ``sigma`` (uA) the
gray-zone width. The inverse, used by the exporter to turn a weight |w| (= the
wanted transmit probability) into a bias current, is
``I_b = I_50 + sigma * Phi^-1(p)``.

Where the numbers come from: the paper's measured p(I) curve is not available to us
(see shared/reference/seed-algorithms.md section 5, marked UNVERIFIED), so we *fit*
the curve to a stochastic RCSJ (resistively shunted junction) simulation of the
decision junction, :func:`rcsj_switching_probability`: overdamped junction,
normalised Langevin equation (time in units of 1/omega_c, omega_c = 2*pi*I_c*R/Phi0)::

    dphi/dtau = i_b + i_pulse(tau) - sin(phi) + sqrt(2*Gamma) * xi(tau)
    Gamma = 2*pi*k_B*T / (Phi0*I_c)       (thermal energy / Josephson energy)

driven by a Gaussian SFQ current pulse from the upstream junction. A trial counts as
transmitted when the phase ends up slipped by 2*pi (phi > pi at the end). The fit
(:func:`fit_probit`) is ordinary least squares of the probit-transformed
probabilities. :data:`DEFAULT_PCURVE` holds the result for the default junction
(I_c = 20 uA, T = 4.2 K, pulse 0.5 I_c peak, 2 ps FWHM); ``tests`` re-run the
simulation and check that the stored fit still describes it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

from neuroplast.errors import ExportError

__all__ = [
    "PHI0",
    "K_B",
    "PCurve",
    "DEFAULT_PCURVE",
    "rcsj_switching_probability",
    "fit_probit",
    "fit_default_pcurve",
]

PHI0 = 2.067833848e-15  # magnetic flux quantum, Wb
K_B = 1.380649e-23  # Boltzmann constant, J/K

_NORMAL = NormalDist()


@dataclass(frozen=True)
class PCurve:
    """Probit transmit-probability curve ``p(I_b) = Phi((I_b - i50_ua) / sigma_ua)``.

    Attributes:
        i50_ua: bias current (uA) giving p = 0.5.
        sigma_ua: gray-zone width (uA); larger = shallower curve.
        ic_ua: critical current (uA) of the decision junction the fit belongs to.
        temperature_k: temperature (K) of the fit.
        p_min, p_max: the probability range the exporter may program; biases are
            clipped to ``bias(p_min) .. bias(p_max)``. Outside it the curve is
            saturated and a 0 / 1 is realised by removing the synapse / using a JTL.
        source: free-text provenance of the numbers.
    """

    i50_ua: float
    sigma_ua: float
    ic_ua: float
    temperature_k: float
    p_min: float = 1e-3
    p_max: float = 1.0 - 1e-3
    source: str = ""

    def probability(self, bias_ua: float | np.ndarray) -> float | np.ndarray:
        """Transmit probability at bias current ``bias_ua`` (uA)."""
        z = (np.asarray(bias_ua, dtype=np.float64) - self.i50_ua) / self.sigma_ua
        p = 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))
        return float(p) if np.ndim(p) == 0 else p

    def bias_for(self, p: float) -> float:
        """Bias current (uA) that programs transmit probability ``p``.

        ``p`` is clipped to ``[p_min, p_max]``; raises :class:`ExportError` outside [0, 1].
        """
        if not (0.0 <= p <= 1.0) or math.isnan(p):
            raise ExportError(f"transmit probability {p!r} is outside [0, 1]")
        q = min(max(p, self.p_min), self.p_max)
        return self.i50_ua + self.sigma_ua * _NORMAL.inv_cdf(q)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = "probit"
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PCurve:
        if d.get("model", "probit") != "probit":
            raise ExportError(f"unknown p(I) curve model {d.get('model')!r}; only 'probit'")
        try:
            return cls(
                i50_ua=float(d["i50_ua"]),
                sigma_ua=float(d["sigma_ua"]),
                ic_ua=float(d["ic_ua"]),
                temperature_k=float(d["temperature_k"]),
                p_min=float(d.get("p_min", 1e-3)),
                p_max=float(d.get("p_max", 1 - 1e-3)),
                source=str(d.get("source", "")),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ExportError(f"p(I) curve field missing or invalid: {e}") from None


def _erf(x: np.ndarray) -> np.ndarray:
    """Vectorised erf without scipy (math.erf per element; arrays here are small)."""
    x = np.asarray(x, dtype=np.float64)
    return np.vectorize(math.erf, otypes=[np.float64])(x) if x.ndim else np.float64(math.erf(x))


def rcsj_switching_probability(
    bias_ua: np.ndarray,
    *,
    ic_ua: float = 20.0,
    temperature_k: float = 4.2,
    pulse_peak: float = 0.5,
    pulse_fwhm_ps: float = 2.0,
    ic_r_mv: float = 0.6,
    n_trials: int = 400,
    seed: int = 0,
) -> np.ndarray:
    """Monte-Carlo switching probability of an overdamped noisy junction hit by an SFQ pulse.

    Args:
        bias_ua: DC bias currents (uA) to evaluate.
        ic_ua: critical current (uA). Noise strength Gamma = 2*pi*k_B*T/(Phi0*I_c).
        temperature_k: temperature (K).
        pulse_peak: peak of the Gaussian input current pulse, in units of I_c.
        pulse_fwhm_ps: full width at half maximum of that pulse (ps).
        ic_r_mv: characteristic voltage I_c*R (mV); sets omega_c = 2*pi*I_c*R/Phi0.
        n_trials: noise realisations per bias point.
        seed: RNG seed.

    Returns:
        Fraction of trials whose phase slipped by 2*pi, one per bias point.
    """
    bias = np.asarray(bias_ua, dtype=np.float64) / ic_ua  # normalised i_b
    gamma = 2.0 * math.pi * K_B * temperature_k / (PHI0 * ic_ua * 1e-6)
    omega_c = 2.0 * math.pi * ic_r_mv * 1e-3 / PHI0  # rad/s
    ps = 1e-12 * omega_c  # one picosecond in normalised time units
    sig = pulse_fwhm_ps * ps / 2.3548
    t_peak = 6.0 * sig + 2.0 * ps
    t_end = t_peak + 12.0 * sig + 20.0 * ps
    dt = min(0.02, sig / 10.0)
    n_steps = int(math.ceil(t_end / dt))
    rng = np.random.default_rng(seed)
    # start every trial at the static bias point phi0 = arcsin(i_b)
    phi = np.repeat(np.arcsin(np.clip(bias, -1, 1))[:, None], n_trials, axis=1)
    ib = bias[:, None]
    noise_amp = math.sqrt(2.0 * gamma * dt)
    for k in range(n_steps):
        t = k * dt
        pulse = pulse_peak * math.exp(-0.5 * ((t - t_peak) / sig) ** 2)
        phi += (ib + pulse - np.sin(phi)) * dt + noise_amp * rng.standard_normal(phi.shape)
    return np.mean(phi > math.pi, axis=1)


def fit_probit(bias_ua: np.ndarray, p: np.ndarray, n_trials: int) -> tuple[float, float]:
    """Fit ``p = Phi((I - I50)/sigma)`` by weighted least squares on probit(p).

    Points with p = 0 or 1 carry no slope information and are dropped; the rest are
    weighted by the inverse binomial variance of probit(p_hat).

    Returns:
        ``(i50_ua, sigma_ua)``.
    """
    bias = np.asarray(bias_ua, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    keep = (p > 0.5 / n_trials) & (p < 1.0 - 0.5 / n_trials)
    if keep.sum() < 2:
        raise ExportError("p(I) fit needs at least two bias points inside the gray zone")
    x = bias[keep]
    pk = p[keep]
    z = np.array([_NORMAL.inv_cdf(float(v)) for v in pk])
    dens = np.array([_NORMAL.pdf(float(v)) for v in z])
    w = dens**2 * n_trials / (pk * (1 - pk))  # 1/var of probit(p_hat), delta method
    a = np.stack([x, np.ones_like(x)], axis=1)
    sw = np.sqrt(w)
    slope, intercept = np.linalg.lstsq(a * sw[:, None], z * sw, rcond=None)[0]
    if slope <= 0:
        raise ExportError("p(I) fit gave a non-increasing curve; widen the bias sweep")
    sigma = 1.0 / slope
    return float(-intercept * sigma), float(sigma)


def fit_default_pcurve(n_points: int = 25, n_trials: int = 400, seed: int = 0) -> PCurve:
    """Re-run the RCSJ sweep behind :data:`DEFAULT_PCURVE` and fit it (a few seconds)."""
    bias = np.linspace(12.0, 20.0, n_points)
    p = rcsj_switching_probability(bias, n_trials=n_trials, seed=seed)
    i50, sigma = fit_probit(bias, p, n_trials)
    return PCurve(
        i50_ua=i50,
        sigma_ua=sigma,
        ic_ua=20.0,
        temperature_k=4.2,
        source=_SOURCE,
    )


_SOURCE = (
    "probit fit to neuroplast.quantize.sfq.pcurve.rcsj_switching_probability "
    "(overdamped RCSJ, Ic=20uA, IcR=0.6mV, T=4.2K, Gaussian input pulse 0.5 Ic peak, "
    "2 ps FWHM; 25 bias points 12-20 uA x 4000 trials, seed 0)"
)

# Result of fit_default_pcurve(n_points=25, n_trials=4000, seed=0); regenerate with
# bench/sfq_pcurve_fit.py. Checked against a fresh simulation in tests.
DEFAULT_PCURVE = PCurve(
    i50_ua=16.0292,
    sigma_ua=0.9087,
    ic_ua=20.0,
    temperature_k=4.2,
    source=_SOURCE,
)
