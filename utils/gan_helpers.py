r"""Losses and diagnostics for training GANs (e.g. a hypernetwork as generator).

``loss_choice`` selects the objective; the discriminator output ``D`` is a linear logit throughout:

- ``0``: vanilla GAN (Goodfellow et al., 2014), non-saturating generator loss, one-sided label smoothing
  (real target 0.9): :math:`L_D = \mathrm{BCE}(\sigma(D_r), 0.9) + \mathrm{BCE}(\sigma(D_f), 0)`,
  :math:`L_G = -\mathrm{mean}\log\sigma(D_f)`;
- ``1``: least-squares GAN (Mao et al., eq. 14; :math:`a=0, b=1, c=1`):
  :math:`L_D = \mathrm{mean}(D_r - 1)^2 + \mathrm{mean}\,D_f^2`, :math:`L_G = \mathrm{mean}(D_f - 1)^2`;
- ``2``: Pearson :math:`\chi^2` LSGAN (Mao et al., eq. 13; :math:`a=-1, b=1, c=0`):
  :math:`L_D = \mathrm{mean}(D_r - 1)^2 + \mathrm{mean}(D_f + 1)^2`, :math:`L_G = \mathrm{mean}\,D_f^2`;
- ``3``: Wasserstein GAN (Arjovsky et al., 2017): :math:`L_D = \mathrm{mean}\,D_f - \mathrm{mean}\,D_r`,
  :math:`L_G = -\mathrm{mean}\,D_f`.

The vanilla losses are computed from the logits (``binary_cross_entropy_with_logits``), which is the same
value as BCE on :math:`\sigma(D)` but does not saturate to ``inf`` for large logits.
"""
import torch
import torch.nn.functional as F

__all__ = ['dis_loss', 'gen_loss', 'accuracy', 'concat_mean_stats']

_LOSS_CHOICES = (0, 1, 2, 3)
_REAL_LABEL_SMOOTHED = 0.9


def _check_choice(loss_choice):
    if isinstance(loss_choice, bool) or loss_choice not in _LOSS_CHOICES:
        raise ValueError('loss_choice: expected one of %s (vanilla, LSGAN, Pearson chi^2 LSGAN, WGAN), got %r'
                         % (list(_LOSS_CHOICES), loss_choice))


def dis_loss(logit_real, logit_fake, loss_choice):
    """Discriminator loss (update only the discriminator with it).

    Args:
        logit_real (torch.Tensor): discriminator outputs on real samples, any shape.
        logit_fake (torch.Tensor): discriminator outputs on generated samples, any shape.
        loss_choice (int): see the module docstring.

    Returns:
        A scalar tensor.
    """
    _check_choice(loss_choice)
    if loss_choice == 0:
        return F.binary_cross_entropy_with_logits(logit_real, torch.full_like(logit_real, _REAL_LABEL_SMOOTHED)) \
            + F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake))
    if loss_choice == 1:
        return (logit_real - 1).pow(2).mean() + logit_fake.pow(2).mean()
    if loss_choice == 2:
        return (logit_real - 1).pow(2).mean() + (logit_fake + 1).pow(2).mean()
    return logit_fake.mean() - logit_real.mean()


def gen_loss(logit_fake, loss_choice):
    """Generator loss on the discriminator outputs for generated samples (see the module docstring)."""
    _check_choice(loss_choice)
    if loss_choice == 0:
        return F.binary_cross_entropy_with_logits(logit_fake, torch.ones_like(logit_fake))
    if loss_choice == 1:
        return (logit_fake - 1).pow(2).mean()
    if loss_choice == 2:
        return logit_fake.pow(2).mean()
    return -logit_fake.mean()


def accuracy(logit_real, logit_fake, loss_choice):
    """Fraction of samples the discriminator classifies correctly (real: output above a threshold).

    The threshold is the midpoint of the values the loss pushes real and fake outputs to: logit 0
    (probability 0.5) for the vanilla GAN, 0.5 for LSGAN (targets 0 and 1), 0 for Pearson LSGAN (targets
    -1 and 1) and WGAN. Returns a scalar tensor (no host sync).
    """
    _check_choice(loss_choice)
    threshold = 0.5 if loss_choice == 1 else 0.
    correct = (logit_real > threshold).sum() + (logit_fake <= threshold).sum()
    return correct.to(logit_real.dtype if logit_real.is_floating_point() else torch.float32) / \
        (logit_real.numel() + logit_fake.numel())


def concat_mean_stats(inputs):
    """Prepend the batch mean to every sample (minibatch discrimination against mode collapse).

    Seeing each sample alone, a discriminator cannot tell that a whole batch looks alike; with the mean of
    the batch next to each sample it can.

    Args:
        inputs (torch.Tensor): ``[B, F, ...]``.

    Returns:
        ``[B, 2F, ...]``: ``[mean_B(inputs), inputs]`` along dim 1.
    """
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 2:
        raise ValueError('inputs: expected a tensor [B, F, ...], got %s'
                         % (list(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__))
    return torch.cat([inputs.mean(0, keepdim=True).expand_as(inputs), inputs], dim=1)
