r"""The leapfrog (Störmer-Verlet) integrator of Hamiltonian dynamics.

For :math:`H(q, p) = U(q) + \frac{1}{2} p^T M^{-1} p` one step of size :math:`\epsilon` is

.. math::

    p_{1/2} = p - \tfrac{\epsilon}{2} \nabla U(q), \qquad
    q' = q + \epsilon M^{-1} p_{1/2}, \qquad
    p' = p_{1/2} - \tfrac{\epsilon}{2} \nabla U(q').

It is time-reversible (integrating :math:`(q', -p')` returns :math:`(q, -p)`) and volume-preserving, which is
what makes the Metropolis correction of HMC exact; its energy error is :math:`O(\epsilon^2)` over a fixed time.

Consecutive half steps are fused, so :math:`L` steps need :math:`L` gradient evaluations when the gradient at
the start is known — the samplers cache it with the state, so the potential of the current state is never
recomputed.
"""
import torch

from .energy import InverseMass, PotentialEvaluator, _check_finite_positive


def integrate(position, momentum, grad, stepsize, num_steps, inv_mass, evaluator):
    r"""Run ``num_steps`` leapfrog steps for a batch of chains, reusing the gradient at the start.

    Args:
        position (torch.Tensor): ``[C, D]``.
        momentum (torch.Tensor): ``[C, D]``.
        grad (torch.Tensor): :math:`\nabla U` at ``position``, ``[C, D]``.
        stepsize (float or torch.Tensor): a scalar or ``[C, 1]`` (one step size per chain, may be negative to
            integrate backwards in time).
        num_steps (int): number of steps :math:`L \geq 1`.
        inv_mass (InverseMass): the inverse mass matrix.
        evaluator (PotentialEvaluator): the potential.

    Returns:
        (tuple): ``(position, momentum, potential, grad)`` at the end: ``[C, D]``, ``[C, D]``, ``[C]``, ``[C, D]``.
    """
    # Per-step constants hoisted out of the loop, so that each update is one fused op (addcmul / add with
    # alpha): the drift  q += (eps M^{-1}) p  and the kicks  p -= eps grad  (half kicks at both ends).
    if inv_mass.dense:
        drift_matrix = stepsize * inv_mass.matrix if not isinstance(stepsize, torch.Tensor) else None

        def drift(q, p):
            if drift_matrix is not None:
                return torch.addmm(q, p, drift_matrix)
            return q + stepsize * (p @ inv_mass.matrix)
    else:
        drift_scale = stepsize * inv_mass.diag

        def drift(q, p):
            return torch.addcmul(q, drift_scale, p)
    if isinstance(stepsize, torch.Tensor):
        neg_half, neg_full = -0.5 * stepsize, -stepsize

        def kick(p, g, full):
            return torch.addcmul(p, neg_full if full else neg_half, g)
    else:
        def kick(p, g, full):
            return p.add(g, alpha=-stepsize if full else -0.5 * stepsize)
    momentum = kick(momentum, grad, False)
    potential = None
    for step in range(num_steps):
        position = drift(position, momentum)
        potential, grad = evaluator.value_and_grad(position)
        momentum = kick(momentum, grad, step < num_steps - 1)
    return position, momentum, potential, grad


def leapfrog(position, momentum, stepsize, num_steps, inv_mass, pot_energy):
    r"""Simulate Hamiltonian dynamics for the time :math:`L \epsilon` with the leapfrog integrator.

    Args:
        position (torch.Tensor): the position :math:`q`, ``[D]`` (or a batch ``[C, D]``).
        momentum (torch.Tensor): the momentum :math:`p`, same shape as ``position``.
        stepsize (float): the step size :math:`\epsilon > 0`.
        num_steps (int): the number of steps :math:`L \geq 1`.
        inv_mass (float or torch.Tensor): :math:`M^{-1}`: a scalar, a diagonal ``[D]`` or a dense ``[D, D]``.
        pot_energy (callable): :math:`U(q)`, a scalar for a position ``[D]``; must be differentiable by autograd.

    Returns:
        (tuple): ``(position, momentum)`` after :math:`L` steps, detached, shaped like the inputs.
    """
    if not isinstance(position, torch.Tensor) or position.ndim not in (1, 2):
        raise ValueError(f'position: expected a tensor [D] or [C, D], got '
                         f'{list(position.shape) if isinstance(position, torch.Tensor) else type(position).__name__}')
    if not isinstance(momentum, torch.Tensor) or momentum.shape != position.shape:
        raise ValueError(f'momentum: expected shape {list(position.shape)}, got '
                         f'{list(momentum.shape) if isinstance(momentum, torch.Tensor) else type(momentum).__name__}')
    _check_finite_positive('stepsize', stepsize)
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f'num_steps: expected an int >= 1, got {num_steps!r}')
    batch = position.ndim == 2
    q = (position if batch else position.unsqueeze(0)).detach()
    p = (momentum if batch else momentum.unsqueeze(0)).detach()
    mass = InverseMass(inv_mass, q.shape[1]).to(q)
    evaluator = PotentialEvaluator(pot_energy)
    _, grad = evaluator.value_and_grad(q)
    q, p, _, _ = integrate(q, p, grad, stepsize, num_steps, mass, evaluator)
    return (q, p) if batch else (q[0], p[0])
