r"""Elastic Weight Consolidation (EWC; Kirkpatrick et al. 2017, https://arxiv.org/abs/1612.00796) and
online EWC (Schwarz et al. 2018, https://arxiv.org/abs/1805.06370).

EWC protects what earlier tasks learned with the quadratic penalty

.. math::
    R(\theta) = \frac{1}{2} \sum_{t < T} \sum_i F_{t,i}\, (\theta_i - \theta^*_{t,i})^2,

where :math:`F_t` is the diagonal of the Fisher information of task :math:`t` at its solution
:math:`\theta^*_t`,

.. math::
    F = \mathbb{E}_{x}\, \mathbb{E}_{y \sim p(y \mid x, \theta)}
        \big[ (\nabla_\theta \log p(y \mid x, \theta))^{\circ 2} \big].

The *empirical* Fisher takes :math:`y` from the data set instead of the model. Both are Monte-Carlo means
of squared **per-sample** gradients; the square is what forbids summing gradients over a batch. Here they
are computed for a whole mini-batch at once:

* networks whose parameters enter only as weights/biases of ``F.linear`` on ``[B, n]`` inputs (plain MLPs)
  use the factorisation of a per-sample linear-layer gradient :math:`\delta_b x_b^\top`:
  :math:`\sum_b (\delta_b x_b^\top)^{\circ 2} = (\delta^{\circ 2})^\top x^{\circ 2}`, with the output
  gradients :math:`\delta` of all samples from one backward pass (no per-sample gradients are stored);
* everything else uses ``torch.func.vmap(torch.func.grad(nll))`` over the samples of a mini-batch, through
  ``torch.func.functional_call`` (the network's own parameters) or the ``weights=`` argument of the main
  network; with a hypernetwork, the main-network weights are the hypernetwork's output for ``task_id``;
* custom forward/NLL functions that ``vmap`` cannot trace, and ``pass_ids``, fall back to a loop over
  samples.

Online EWC keeps a single running estimate :math:`F^*_t = \gamma F^*_{t-1} + F_t` and penalises
:math:`\frac{\gamma}{2}\sum_i F^*_{t-1,i} (\theta_i - \theta^*_{t-1,i})^2` (Schwarz et al., eq. 8).

Estimates live in buffers of the main network (or of the hypernetwork when ``hnet`` is given), under the
reference library's names: ``ewc_prev[_task_<t>]_weights_<i>`` and
``ewc_fisher_estimate[_task_<t>]_weights_<i>`` (``_task_<t>`` absent for online EWC), where ``<i>`` is the
position in ``params``; so ``params`` must be passed in the same order every time.
"""
from warnings import warn

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

__all__ = ['compute_fisher', 'ewc_regularizer', 'context_mod_forward']

# Samples per mini-batch: the factorised path stores only activations; the vmap path stores one gradient
# per sample, so it is further capped by an element budget (64 MiB of float32).
_FACTORISED_CHUNK = 1024
_VMAP_CHUNK = 256
_VMAP_GRAD_ELEMENTS = 2 ** 24


def compute_fisher(task_id, data, params, device, mnet, hnet=None, empirical_fisher=True, online=False,
                   gamma=1., n_max=-1, regression=False, time_series=False, allowed_outputs=None,
                   custom_forward=None, custom_nll=None, pass_ids=False, proper_scaling=False,
                   prior_strength=None, regression_lvar=1., target_manipulator=None):
    r"""Estimate the diagonal Fisher of ``params`` on the training set of ``data`` and store it.

    Args:
        task_id (int): Task whose estimate is stored; with ``hnet`` also the condition fed to it.
        data: Data handler (hypnettorch ``Dataset`` interface): ``num_train_samples``,
            ``reset_batch_generator``, ``next_train_batch``, ``input_to_torch_tensor``,
            ``output_to_torch_tensor``, and for classification ``classification``, ``is_one_hot``.
        params (list): Tensors to estimate the Fisher for. Without ``hnet`` the main-network weights (its
            own parameters, or tensors passed as ``mnet.forward(x, weights=params)``); with ``hnet`` the
            hypernetwork weights (its own parameters, or its unconditional weights :math:`\theta`).
        device: Device the data tensors are moved to.
        mnet: Main network (``MainNetInterface``); its output must be linear (logits or means).
        hnet (optional): Hypernetwork producing the main-network weights via ``hnet.forward(cond_id=task_id)``.
        empirical_fisher (bool): Use data labels; otherwise labels are sampled from the model's predictive
            distribution (softmax for classification, :math:`\mathcal{N}(f(x), \sigma^2 I)` for regression).
        online (bool): Online EWC: one decayed running estimate instead of one per task.
        gamma (float): Decay :math:`\gamma \in [0, 1]` of online EWC.
        n_max (int): Use at most this many training samples (``-1``: all).
        regression (bool): Gaussian likelihood with variance ``regression_lvar``:
            :math:`-\log p = \lVert f(x) - y \rVert^2 / (2\sigma^2) + \text{const}`.
        time_series (bool): Outputs are ``[S, N, F]`` (time first); the NLL of a sequence is the sum over
            time steps, inputs and targets carry the sample index in dimension 1.
        allowed_outputs (list, optional): Output units that enter the likelihood (e.g. one head).
        custom_forward (callable, optional): ``fun(mnet, params, X)`` or, with ``hnet``,
            ``fun(mnet, hnet, task_id, params, X)`` (plus ``data, batch_ids`` with ``pass_ids``) returning
            the outputs for ``X``.
        custom_nll (callable, optional): ``fun(Y, T, data, allowed_outputs, empirical_fisher)`` (plus
            ``batch_ids`` with ``pass_ids``) returning the NLL of one sample.
        pass_ids (bool): Pass sample ids to the custom functions (forces the per-sample loop).
        proper_scaling (bool): Store :math:`N \cdot F` (training-set size :math:`N`) instead of the mean,
            the scale a Laplace approximation of the posterior asks for (meant for online EWC).
        prior_strength (float or list, optional): Online EWC only: offset added to the estimate, e.g. the
            prior precision :math:`1/\sigma^2_\text{prior}`; a scalar or one tensor per ``params`` entry.
        regression_lvar (float): Likelihood variance :math:`\sigma^2` for regression.
        target_manipulator (callable, optional): ``T = fun(T)`` applied to the data targets.

    Raises:
        ValueError, TypeError: invalid arguments, or online EWC without the previous task's estimate.
    """
    params = _check_params(params)
    _check_fisher_args(task_id, data, mnet, hnet, online, gamma, n_max, regression, custom_nll,
                       proper_scaling, prior_strength, params)
    net = mnet if hnet is None else hnet
    previous = _stored_online_fisher(net, task_id, params) if online and task_id > 0 else None

    n_samples = data.num_train_samples if n_max == -1 else min(n_max, data.num_train_samples)
    problem = _FisherProblem(task_id, data, params, device, mnet, hnet, empirical_fisher, regression,
                             time_series, allowed_outputs, custom_forward, custom_nll, pass_ids,
                             regression_lvar, target_manipulator)
    modes = [(m, m.training) for m in (mnet, hnet) if m is not None]
    for module, _ in modes:
        module.eval()
    try:
        with torch.enable_grad():
            squared_sum = problem.squared_gradient_sum(n_samples)
    finally:
        for module, was_training in modes:
            module.train(was_training)

    scale = data.num_train_samples / n_samples if proper_scaling else 1. / n_samples
    for i, p in enumerate(params):
        fisher = squared_sum[i] * scale
        if prior_strength is not None:
            fisher = fisher + (prior_strength[i] if isinstance(prior_strength, (list, tuple))
                               else prior_strength)
        if previous is not None:
            fisher = fisher + gamma * previous[i]
        weight_name, fisher_name = _buffer_names(task_id, i, online)
        net.register_buffer(weight_name, p.detach().clone())
        net.register_buffer(fisher_name, fisher.detach().to(p.dtype))


def ewc_regularizer(task_id, params, mnet, hnet=None, online=False, gamma=None):
    r"""The EWC penalty :math:`\frac{1}{2}\sum_{t<\text{task\_id}} \sum_i F_{t,i}(\theta_i-\theta^*_{t,i})^2`.

    With ``online`` it is :math:`\frac{\gamma}{2} \sum_i F^*_i (\theta_i - \theta^*_i)^2` for the single
    stored estimate; the stored buffers are only read (the reference decayed them in place on every
    call). Call it while training task ``task_id``, before :func:`compute_fisher` for that task.

    Args:
        task_id (int): Current task; non-online EWC penalises tasks ``0 .. task_id-1``.
        params (list): Same tensors, same order as given to :func:`compute_fisher`.
        mnet: Main network holding the buffers (when ``hnet`` is None).
        hnet (optional): Hypernetwork holding the buffers.
        online (bool): Online EWC.
        gamma (float, optional): Online EWC decay applied to the stored estimate; ``None`` means 1.

    Returns:
        (torch.Tensor): Scalar, differentiable in ``params``; multiply by the strength :math:`\lambda`.

    Raises:
        ValueError: no stored estimate for a needed task, or ``params`` not matching the stored buffers.
    """
    params = _check_params(params)
    net = mnet if hnet is None else hnet
    if online:
        decay = 1. if gamma is None else gamma
        stored = [_stored_pair(net, None, i, True, p) for i, p in enumerate(params)]
        _check_no_extra_buffers(net, None, len(params), True)
        terms = [(fisher * (p - weight).pow(2)).sum() for p, (weight, fisher) in zip(params, stored)]
        return 0.5 * decay * torch.stack(terms).sum()
    if not isinstance(task_id, int) or task_id < 1:
        raise ValueError(f'task_id: expected an int >= 1 (tasks before it are regularized), got {task_id!r}')
    terms = []
    for i, p in enumerate(params):
        pairs = [_stored_pair(net, t, i, False, p) for t in range(task_id)]
        # One elementwise pass over all previous tasks of this tensor instead of one per task.
        weights = torch.stack([w for w, _ in pairs])
        fishers = torch.stack([f for _, f in pairs])
        terms.append((fishers * (p.unsqueeze(0) - weights).pow(2)).sum())
    for t in range(task_id):
        _check_no_extra_buffers(net, t, len(params), False)
    return 0.5 * torch.stack(terms).sum()


def context_mod_forward(mod_weights=None):
    """A ``custom_forward`` for :func:`compute_fisher` with a context-modulated main network.

    ``params`` are then the main network's internal weights; the context-mod weights are ``mod_weights``
    (fixed, for ``hnet=None``) or, when ``mod_weights`` is None, the output of ``hnet`` for ``task_id``.

    Args:
        mod_weights (list, optional): Fixed context-modulation weights.

    Returns:
        (callable): ``fun(mnet, params, X)`` if ``mod_weights`` is given, else
        ``fun(mnet, hnet, task_id, params, X)``.
    """
    if mod_weights is not None:
        def forward_fixed_modulation(mnet, params, X):
            return mnet.forward(X, weights={'mod_weights': mod_weights, 'internal_weights': params})
        return forward_fixed_modulation

    def forward_hnet_modulation(mnet, hnet, task_id, params, X):
        generated = hnet.forward(cond_id=task_id)
        return mnet.forward(X, weights={'mod_weights': generated, 'internal_weights': params})
    return forward_hnet_modulation


class _FisherProblem:
    """Likelihood, forward and per-sample gradient machinery of one :func:`compute_fisher` call."""

    def __init__(self, task_id, data, params, device, mnet, hnet, empirical_fisher, regression,
                 time_series, allowed_outputs, custom_forward, custom_nll, pass_ids, regression_lvar,
                 target_manipulator):
        self.task_id, self.data, self.params, self.device = task_id, data, params, device
        self.mnet, self.hnet = mnet, hnet
        self.empirical, self.regression, self.time_series = empirical_fisher, regression, time_series
        self.custom_forward, self.custom_nll, self.pass_ids = custom_forward, custom_nll, pass_ids
        self.lvar, self.target_manipulator = regression_lvar, target_manipulator
        self.sample_dim = 1 if time_series else 0
        self.allowed = None if allowed_outputs is None else torch.as_tensor(allowed_outputs, dtype=torch.long)
        owner = mnet if hnet is None else hnet
        names = {id(p): name for name, p in owner.named_parameters()}
        self.own_names = [names.get(id(p)) for p in params]
        self.owns_all = all(name is not None for name in self.own_names)

    # ------------------------------------------------------------------ model
    def outputs(self, params, X, ids=None):
        """Main-network outputs for inputs ``X`` given (a stand-in for) ``params``."""
        extra = (self.data, ids) if self.pass_ids else ()
        if self.hnet is None:
            if self.custom_forward is not None:
                return self.custom_forward(self.mnet, params, X, *extra)
            return self._call(self.mnet, params, (X,), {})
        if self.custom_forward is not None:
            return self.custom_forward(self.mnet, self.hnet, self.task_id, params, X, *extra)
        generated = self._call(self.hnet, params, (), {'cond_id': self.task_id})
        return self.mnet.forward(X, weights=generated)

    def _call(self, owner, params, args, kwargs):
        if params is self.params:  # the original tensors: the module's own forward uses them already
            if self.owns_all:
                return owner.forward(*args, **kwargs)
        elif self.owns_all:
            mapping = dict(zip(self.own_names, params))
            return torch.func.functional_call(owner, mapping, args, kwargs)
        weights = params if owner is self.mnet else {'uncond_weights': list(params)}
        return owner.forward(*args, weights=weights, **kwargs)

    def nll(self, Y, T, ids=None):
        """Summed negative log-likelihood of a batch (a single sample under vmap)."""
        expected_dims = 3 if self.time_series else 2
        if Y.dim() != expected_dims:
            raise ValueError(f'mnet output: expected {expected_dims} dims '
                             f'({"[S, N, F]" if self.time_series else "[N, F]"}), got shape {tuple(Y.shape)}')
        if self.allowed is not None:
            Y = Y.index_select(-1, self.allowed.to(Y.device))
        if self.custom_nll is not None:
            extra = (ids,) if self.pass_ids else ()
            allowed = None if self.allowed is None else self.allowed.tolist()
            return self.custom_nll(Y, T, self.data, allowed, self.empirical, *extra)
        if self.regression:
            return 0.5 / self.lvar * (Y - T).pow(2).sum()
        return F.cross_entropy(Y.reshape(-1, Y.shape[-1]), T.reshape(-1), reduction='sum')

    def targets(self, T_data, model_outputs):
        """Labels for the likelihood: data labels (as class indices) or samples from the model.

        ``model_outputs()`` returns the detached outputs of the batch; it is only called for sampling.
        """
        if self.custom_nll is not None:
            return T_data
        if self.empirical:
            if self.regression:
                return T_data
            if getattr(self.data, 'is_one_hot', False):
                return T_data.argmax(-1)
            return T_data.reshape(T_data.shape[:self.sample_dim + 1]).long()
        Y = model_outputs()
        if self.allowed is not None:
            Y = Y.index_select(-1, self.allowed.to(Y.device))
        if self.regression:
            return Y + self.lvar ** 0.5 * torch.randn_like(Y)
        return torch.distributions.Categorical(logits=Y).sample()

    def detached_outputs(self, params, X, ids=None):
        with torch.no_grad():
            return self.outputs(params, X, ids)

    # -------------------------------------------------------------- gradients
    def squared_gradient_sum(self, n_samples):
        r""":math:`\sum_b (\nabla_\theta\, \text{nll}_b)^{\circ 2}` over ``n_samples`` training samples."""
        sums = [torch.zeros_like(p, dtype=torch.float64 if p.dtype == torch.float64 else torch.float32)
                for p in self.params]
        factorisable = (self.hnet is None and self.custom_forward is None and self.custom_nll is None
                        and not self.time_series)
        vectorised = not self.pass_ids
        num_elements = sum(p.numel() for p in self.params)
        vmap_chunk = max(1, min(_VMAP_CHUNK, _VMAP_GRAD_ELEMENTS // max(num_elements, 1)))
        self.data.reset_batch_generator(train=True, test=False, val=False)
        remaining = n_samples
        while remaining > 0:
            chunk = min(remaining, _FACTORISED_CHUNK if factorisable else vmap_chunk)
            X, T, ids = self._next_batch(chunk)
            count = X.shape[self.sample_dim]
            if count == 0:
                raise ValueError('data: next_train_batch returned no samples before n_max was reached')
            remaining -= count
            if factorisable:
                increments = _factorised_squared_grads(self, X, T)
                if increments is not None:
                    _accumulate(sums, increments)
                    continue
                factorisable = False
            if vectorised:
                try:
                    _accumulate(sums, self._vmap_squared_grads(X, T))
                    continue
                except RuntimeError as error:
                    if self.custom_forward is None and self.custom_nll is None:
                        raise
                    warn(f'compute_fisher: custom_forward/custom_nll cannot be vectorised ({error}); '
                         'falling back to a loop over samples')
                    vectorised = False
            _accumulate(sums, self._looped_squared_grads(X, T, ids))
        return sums

    def _next_batch(self, size):
        batch = self.data.next_train_batch(size, return_ids=self.pass_ids)
        X = self.data.input_to_torch_tensor(batch[0], self.device, mode='inference')
        T = self.data.output_to_torch_tensor(batch[1], self.device, mode='inference')
        if self.target_manipulator is not None:
            T = self.target_manipulator(T)
        return X, T, (list(batch[2]) if self.pass_ids else None)

    def _vmap_squared_grads(self, X, T):
        params = [p.detach() for p in self.params]
        T = self.targets(T, lambda: self.detached_outputs(params, X))
        dim = self.sample_dim

        def sample_nll(params, x, t):
            Y = self.outputs(params, x.unsqueeze(dim))
            return self.nll(Y, t.unsqueeze(dim))

        per_sample = torch.func.vmap(torch.func.grad(sample_nll), in_dims=(None, dim, dim))(params, X, T)
        return [g.pow(2).sum(0) for g in per_sample]

    def _looped_squared_grads(self, X, T, ids):
        leaves = [p.detach().requires_grad_(True) for p in self.params]
        T = self.targets(T, lambda: self.detached_outputs(leaves, X, ids))
        squares = [torch.zeros_like(p) for p in leaves]
        for b in range(X.shape[self.sample_dim]):
            x = X.narrow(self.sample_dim, b, 1)
            t = T.narrow(self.sample_dim, b, 1)
            sample_ids = None if ids is None else ids[b:b + 1]
            loss = self.nll(self.outputs(leaves, x, sample_ids), t, sample_ids)
            grads = torch.autograd.grad(loss, leaves, allow_unused=True)
            for square, g in zip(squares, grads):
                if g is not None:
                    square.add_(g.pow(2))
        return squares


class _NotFactorisable(Exception):
    """The forward uses a parameter in a way the linear-layer factorisation does not cover."""


class _LinearProbeMode(TorchFunctionMode):
    """Adds a zero "probe" to the output of every ``F.linear`` that uses a tracked parameter.

    The gradient of the summed NLL w.r.t. a probe is the per-sample output gradient :math:`\\delta` of
    that layer, because samples do not interact in an eval-mode forward without batch statistics. Any
    other tensor computation on a tracked parameter, a parameter used twice, non-``[B, n]`` layer inputs
    or batch normalisation abort with :class:`_NotFactorisable`.
    """

    def __init__(self, params, batch_size):
        super().__init__()
        self.index = {id(p): i for i, p in enumerate(params)}
        self.batch_size = batch_size
        self.layers = []  # (input, weight index or None, bias index or None, probe)
        self.used = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear:
            return self._linear(func, args, kwargs)
        if func in (F.batch_norm, torch.batch_norm):
            raise _NotFactorisable
        result = func(*args, **kwargs)
        leaves, _ = tree_flatten((args, kwargs))
        if any(isinstance(a, torch.Tensor) and id(a) in self.index for a in leaves):
            outputs, _ = tree_flatten(result)
            # Metadata reads (shape, dtype, dim) are harmless; a tensor derived from a parameter is not.
            if any(isinstance(o, torch.Tensor) for o in outputs):
                raise _NotFactorisable
        return result

    def _linear(self, func, args, kwargs):
        names = ('input', 'weight', 'bias')
        values = dict(zip(names, args))
        values.update(kwargs)
        inp, weight, bias = values['input'], values['weight'], values.get('bias')
        w_index = self.index.get(id(weight))
        b_index = None if bias is None else self.index.get(id(bias))
        output = func(*args, **kwargs)
        if w_index is None and b_index is None:
            if id(inp) in self.index:
                raise _NotFactorisable
            return output
        for index in (w_index, b_index):
            if index is not None:
                if index in self.used:
                    raise _NotFactorisable
                self.used.add(index)
        if inp.dim() != 2 or inp.shape[0] != self.batch_size or id(inp) in self.index:
            raise _NotFactorisable
        probe = torch.zeros_like(output, requires_grad=True)
        self.layers.append((inp.detach(), w_index, b_index, probe))
        return output + probe


def _factorised_squared_grads(problem, X, T):
    """Squared per-sample gradient sums for linear-layer networks, or None if not applicable."""
    mode = _LinearProbeMode(problem.params, X.shape[0])
    try:
        with mode:
            Y = problem.outputs(problem.params, X)
    except _NotFactorisable:
        return None
    if not mode.layers:
        return None
    targets = problem.targets(T, Y.detach)
    deltas = torch.autograd.grad(problem.nll(Y, targets), [probe for *_, probe in mode.layers],
                                 allow_unused=True)
    squares = [torch.zeros_like(p) for p in problem.params]
    for (inp, w_index, b_index, _), delta in zip(mode.layers, deltas):
        if delta is None:
            continue
        delta_sq = delta.pow(2)
        if w_index is not None:
            squares[w_index] = delta_sq.t() @ inp.pow(2)
        if b_index is not None:
            squares[b_index] = delta_sq.sum(0)
    return squares


def _accumulate(sums, increments):
    for total, increment in zip(sums, increments):
        total.add_(increment.to(total.dtype))


def _buffer_names(task_id, param_index, online):
    task = '' if online else f'_task_{task_id}'
    return f'ewc_prev{task}_weights_{param_index}', f'ewc_fisher_estimate{task}_weights_{param_index}'


def _stored_pair(net, task_id, index, online, p):
    weight_name, fisher_name = _buffer_names(task_id, index, online)
    weight, fisher = getattr(net, weight_name, None), getattr(net, fisher_name, None)
    if weight is None or fisher is None:
        which = 'the online estimate' if online else f'task {task_id}'
        raise ValueError(f'task_id: expected a stored Fisher estimate for {which} (buffer {fisher_name}); '
                         'call compute_fisher for it first, got none')
    if weight.shape != p.shape:
        raise ValueError(f'params[{index}]: expected shape {tuple(weight.shape)} as stored by '
                         f'compute_fisher, got {tuple(p.shape)}')
    return weight, fisher


def _check_no_extra_buffers(net, task_id, num_params, online):
    _, fisher_name = _buffer_names(task_id, num_params, online)
    if getattr(net, fisher_name, None) is not None:
        count = num_params
        while getattr(net, _buffer_names(task_id, count, online)[1], None) is not None:
            count += 1
        raise ValueError(f'params: expected {count} tensors as stored by compute_fisher, got {num_params}')


def _stored_online_fisher(net, task_id, params):
    stored = [_stored_pair(net, None, i, True, p)[1] for i, p in enumerate(params)]
    _check_no_extra_buffers(net, None, len(params), True)
    return stored


def _check_params(params):
    if not isinstance(params, (list, tuple)) or not params:
        raise TypeError(f'params: expected a non-empty list of tensors, got {type(params).__name__}'
                        + (' (empty)' if isinstance(params, (list, tuple)) else ''))
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f'params[{i}]: expected a torch.Tensor, got {type(p).__name__}')
    return list(params)


def _check_fisher_args(task_id, data, mnet, hnet, online, gamma, n_max, regression, custom_nll,
                       proper_scaling, prior_strength, params):
    if not isinstance(task_id, int) or task_id < 0:
        raise ValueError(f'task_id: expected an int >= 0, got {task_id!r}')
    if online and not 0. <= gamma <= 1.:
        raise ValueError(f'gamma: expected a value in [0, 1] for online EWC, got {gamma}')
    if not isinstance(n_max, int) or (n_max != -1 and n_max < 1):
        raise ValueError(f'n_max: expected -1 or a positive int, got {n_max!r}')
    if getattr(data, 'num_train_samples', 0) < 1:
        raise ValueError(f'data: expected a data set with training samples, got '
                         f'num_train_samples={getattr(data, "num_train_samples", None)}')
    if custom_nll is None and not getattr(mnet, 'has_linear_out', True):
        raise ValueError('mnet: expected a network with linear outputs (logits or means) for the built-in '
                         'likelihoods, got has_linear_out=False; pass custom_nll')
    if custom_nll is None and not regression and not getattr(data, 'classification', True):
        raise ValueError('data: expected a classification data set (or regression=True), '
                         'got classification=False')
    if hnet is not None and not hasattr(hnet, 'forward'):
        raise TypeError(f'hnet: expected a hypernetwork, got {type(hnet).__name__}')
    if not online:
        if proper_scaling:
            warn('compute_fisher: proper_scaling is only justified for online EWC')
        if prior_strength is not None:
            raise ValueError(f'prior_strength: only applicable with online=True, got {prior_strength!r}')
    if isinstance(prior_strength, (list, tuple)):
        if len(prior_strength) != len(params):
            raise ValueError(f'prior_strength: expected {len(params)} tensors, got {len(prior_strength)}')
        for i, (prior, p) in enumerate(zip(prior_strength, params)):
            if tuple(prior.shape) != tuple(p.shape):
                raise ValueError(f'prior_strength[{i}]: expected shape {tuple(p.shape)}, '
                                 f'got {tuple(prior.shape)}')
