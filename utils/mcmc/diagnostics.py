r"""Convergence diagnostics of several chains: effective sample size and split :math:`\hat R`.

Both follow Stan (Gelman et al., BDA3, ch. 11; Vehtari et al. 2021 without rank normalisation). Samples are
``[C, N, ...]``: ``C`` chains of ``N`` draws, any trailing event shape, computed per scalar component.
Each chain is split in half first, so a chain that drifts (first half differs from second) is detected.

- split :math:`\hat R = \sqrt{\hat V / W}` with the within-chain variance :math:`W`, the between-chain variance
  :math:`B`, and :math:`\hat V = \frac{n - 1}{n} W + \frac{B}{n}`; close to 1 when the chains agree.
- ESS :math:`= C N / \hat\tau` with the integrated autocorrelation time
  :math:`\hat\tau = -1 + 2 \sum_{k} (\hat\rho_{2k} + \hat\rho_{2k+1})`, summed while the pair sums stay
  positive and made monotone (Geyer's initial monotone sequence), where
  :math:`\hat\rho_t = 1 - (W - \overline{\text{acov}}_t) / \hat V`.
"""
import torch


def _as_chains(samples):
    if not isinstance(samples, torch.Tensor):
        samples = torch.as_tensor(samples)
    if samples.ndim < 2:
        raise ValueError(f'samples: expected [num_chains, num_samples, ...], got shape {list(samples.shape)}')
    if samples.shape[1] < 4:
        raise ValueError(f'samples: expected at least 4 draws per chain, got {samples.shape[1]}')
    samples = samples.detach().to(torch.float64)
    samples = samples.unsqueeze(-1) if samples.ndim == 2 else samples.flatten(2)
    half = samples.shape[1] // 2
    # Split each chain into its two halves (the middle draw of an odd-length chain is dropped).
    return torch.cat([samples[:, :half], samples[:, -half:]], dim=0)


def _variances(chains):
    """Within-chain variance W and the pooled estimate V of split chains ``[M, n, K]``: each ``[K]``."""
    n = chains.shape[1]
    chain_means = chains.mean(1)
    within = chains.var(1, unbiased=True).mean(0)
    between = n * chain_means.var(0, unbiased=True) if chains.shape[0] > 1 else torch.zeros_like(within)
    return within, (n - 1) / n * within + between / n


def split_rhat(samples):
    r"""Split :math:`\hat R` per component.

    Args:
        samples (torch.Tensor): ``[C, N, ...]``.

    Returns:
        (torch.Tensor): ``[...]`` (the event shape), float64.
    """
    event_shape = torch.as_tensor(samples).shape[2:]
    within, pooled = _variances(_as_chains(samples))
    return (pooled / within).sqrt().reshape(event_shape)


def _autocovariance(chains):
    """Autocovariance of each split chain at all lags via FFT: ``[M, n, K] -> [M, n, K]`` (biased, /n)."""
    n = chains.shape[1]
    centered = chains - chains.mean(1, keepdim=True)
    size = 2 * n
    spectrum = torch.fft.rfft(centered, n=size, dim=1)
    return torch.fft.irfft(spectrum * spectrum.conj(), n=size, dim=1)[:, :n] / n


def effective_sample_size(samples):
    """Effective sample size per component (Geyer's initial monotone sequence over all chains).

    Args:
        samples (torch.Tensor): ``[C, N, ...]``.

    Returns:
        (torch.Tensor): ``[...]`` (the event shape), float64; at most ``C N log10(C N)`` as in Stan.
    """
    event_shape = torch.as_tensor(samples).shape[2:]
    chains = _as_chains(samples)
    num_chains, n = chains.shape[0], chains.shape[1]
    within, pooled = _variances(chains)
    acov = _autocovariance(chains)
    mean_acov = acov.mean(0)
    rho = 1. - (within - mean_acov) / pooled
    rho[0] = 1.
    num_pairs = n // 2
    pair_sums = rho[:2 * num_pairs].reshape(num_pairs, 2, -1).sum(1)
    positive = torch.cumprod((pair_sums > 0).to(pair_sums.dtype), dim=0)
    monotone = torch.cummin(torch.where(positive > 0, pair_sums, torch.zeros_like(pair_sums)), dim=0).values
    tau = -1. + 2. * (monotone * positive).sum(0)
    total = num_chains * n
    tau = torch.clamp(tau, min=1. / torch.log10(torch.tensor(float(total), dtype=tau.dtype)))
    ess = total / tau
    constant = pooled <= 0
    return torch.where(constant, torch.full_like(ess, float(total)), ess).reshape(event_shape)


def mcse_mean(samples):
    """Monte-Carlo standard error of the mean per component: ``sqrt(var / ESS)``, shape ``[...]``."""
    flat = torch.as_tensor(samples).detach().to(torch.float64)
    variance = flat.reshape(-1, *flat.shape[2:]).var(0, unbiased=True)
    return (variance / effective_sample_size(samples)).sqrt()
