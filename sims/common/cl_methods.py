"""Continual-learning methods behind one small interface used by :mod:`sims.common.cl_train`.

* :class:`HnetMethod` -- a task-conditioned hypernetwork ``h(e_t, theta)`` produces all weights of the main
  network for task ``t``. Training task ``t`` minimises ``CE + beta * R`` with the output regularizer
  ``R = 1/t * sum_{j<t} ||h(e_j, theta) - h(e_j, theta*)||^2`` (``theta*``: weights before task ``t``, the
  targets are computed once per task in one batched forward), see :func:`utils.hnet_regularizer`.
* :class:`MnetMethod` -- one main network trained directly: ``fine_tune`` (no protection), ``from_scratch``
  (a fresh network per task, each task evaluated with its own), ``ewc``/``online_ewc`` (diagonal-Fisher
  quadratic penalty) and ``si`` (Synaptic Intelligence path-integral importances).
* :class:`HATMethod` -- Hard Attention to the Task (Serra et al., ICML 2018): one multi-head MLP whose hidden
  units are gated per task by almost-binary masks ``sigma(s * e_t)``; weights between units that earlier tasks
  use get no gradient, so those tasks' outputs stay exactly as they were. Needs the task identity at test time.

Interface: ``start_task(t)``, ``train_step(t, x, y) -> loss`` (detached tensor, no host sync),
``end_task(t, data)``, ``task_logits(t, x)`` (logits of task ``t``'s classes given the task identity),
``stacked_task_logits(x, num_tasks)`` (hnet and hat: ``[K, B, c]`` under every task's weights or masks) and
``state_dict``/``load_state_dict`` for checkpoints.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from utils.sim_utils import get_hypernet, get_mnet_model

__all__ = ['HnetMethod', 'MnetMethod', 'HATMethod', 'make_method', 'METHODS']

METHODS = ['hnet', 'ewc', 'online_ewc', 'si', 'fine_tune', 'from_scratch', 'hat']


class _TaskOptimizer:
    """Adam for one task, with the learning rate either constant or annealed as
    ``lr_i = lr * (1 + cos(pi * i / n_iter)) / 2`` over the task's ``n_iter`` steps: the small final steps
    settle the weights into the minimum instead of leaving them at Adam's noise level."""

    def __init__(self, params, config):
        params = list(params)
        options = dict(lr=config.lr, betas=(config.adam_beta1, 0.999), weight_decay=config.weight_decay)
        try:
            # One fused kernel per step for all tensors (CPU support since torch 2.4): the same update as the
            # default per-tensor loop, measured 0.17 vs 1.9 ms per step on the split-MNIST hypernetwork's
            # tensors with 2 CPU threads. Older torch builds refuse it for CPU tensors: then foreach.
            self.optimizer = torch.optim.Adam(params, fused=True, **options)
        except RuntimeError:
            self.optimizer = torch.optim.Adam(params, foreach=True, **options)
        self.scheduler = None
        if config.lr_schedule == 'cosine':
            total = config.n_iter
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(
                self.optimizer, lambda i: 0.5 * (1.0 + math.cos(math.pi * min(i, total) / total)))

    def zero_grad(self, set_to_none=True):
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self):
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()


def _adam(params, config):
    return _TaskOptimizer(params, config)


class HnetMethod:
    """Task-conditioned hypernetwork with the output regularizer (von Oswald et al., ICLR 2020)."""

    uses_task_inference = True

    def __init__(self, config, data, device):
        self.config, self.device = config, device
        self.mnet = get_mnet_model(config, config.net_type, data.in_shape_for(config.net_type),
                                   [data.classes_per_task], device, no_weights=True)
        self.hnet = get_hypernet(config, device, config.hnet_type, self.mnet.param_shapes, data.num_tasks)
        if getattr(config, 'hyper_fan_init', False) and hasattr(self.hnet, 'apply_hyperfan_init'):
            self.hnet.apply_hyperfan_init(mnet=self.mnet)
        self.modules = nn.ModuleDict({'mnet': self.mnet, 'hnet': self.hnet})
        self.targets = None

    def start_task(self, task_id):
        from utils.hnet_regularizer import get_current_targets

        # Targets h(e_j, theta*) of all previous tasks, frozen for the whole task (one batched forward), stacked
        # once to [task_id, num_outputs] so that no step concatenates them again.
        self.targets = None
        if task_id > 0:
            self.targets = torch.stack([torch.cat([w.reshape(-1) for w in task_weights])
                                        for task_weights in get_current_targets(task_id, self.hnet)])
        # Only theta and the current task's embedding learn; earlier embeddings stay as they were.
        params = list(self.hnet.unconditional_params) + [self.hnet.conditional_params[task_id]]
        self.optimizer = _adam(params, self.config)

    def train_step(self, task_id, x, y):
        from utils.hnet_regularizer import calc_fix_target_reg

        self.optimizer.zero_grad(set_to_none=True)
        regularize = task_id > 0 and self.config.beta > 0
        batch = self.config.hnet_reg_batch_size
        if regularize and not 0 < batch < task_id:
            # All previous tasks are regularized: their outputs come from the same batched forward as the
            # current task's weights (one hypernetwork forward and backward per step instead of two).
            outputs = self.hnet(cond_id=[task_id] + list(range(task_id)), ret_format='flattened')
            weights = self.hnet.convert_out_format(outputs[:1], 'flattened', 'squeezed')
            reg = calc_fix_target_reg(self.hnet, task_id, targets=self.targets, predicted=outputs[1:])
        else:
            weights = self.hnet(cond_id=task_id)
            reg = calc_fix_target_reg(self.hnet, task_id, targets=self.targets, batch_size=batch) \
                if regularize else None
        loss = F.cross_entropy(self.mnet(x, weights=weights), y)
        if reg is not None:
            loss = loss + self.config.beta * reg
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def end_task(self, task_id, data):
        self.targets = None

    @torch.no_grad()
    def task_logits(self, task_id, x):
        return self.mnet(x, weights=self.hnet(cond_id=task_id))

    @torch.no_grad()
    def stacked_task_logits(self, x, num_tasks):
        """Logits ``[K, B, c]`` of ``x`` under the weights of tasks ``0..K-1``: one batched hypernetwork
        forward for all K weight sets, one vmapped main-network forward."""
        sets = self.hnet(cond_id=list(range(num_tasks)), ret_format='sequential')
        stacked = [torch.stack(tensors) for tensors in zip(*sets)]
        return self.mnet.forward_batch(x, stacked)

    def state_dict(self):
        return {'modules': self.modules.state_dict()}

    def load_state_dict(self, state):
        self.modules.load_state_dict(state['modules'])


class MnetMethod:
    """A main network trained directly on each task, optionally with a weight-space CL regularizer.

    Heads: with task identity (CL1), or with disjoint classes per task, the network has ``c * T`` outputs
    and task ``t`` uses outputs ``[t*c, (t+1)*c)`` (multi-head). In CL3 with disjoint classes training task
    ``t`` uses the softmax over all classes seen so far, ``[0, (t+1)*c)``, with global labels.
    """

    uses_task_inference = False

    def __init__(self, config, data, device):
        self.config, self.device, self.data = config, device, data
        self.method = config.method
        self.class_incremental = config.cl_scenario == 3
        self.c = data.classes_per_task
        multi = data.split_classes or not self.class_incremental
        self.n_out = self.c * data.num_tasks if multi else self.c
        self.mnet = self._new_mnet()
        self.modules = nn.ModuleDict({'mnet': self.mnet})
        self.snapshots = []  # from_scratch: the weights each task was trained to

    def _new_mnet(self):
        return get_mnet_model(self.config, self.config.net_type, self.data.in_shape_for(self.config.net_type),
                              [self.n_out], self.device)

    def _train_slice(self, task_id):
        if self.class_incremental and self.data.split_classes:
            return 0, (task_id + 1) * self.c
        if self.n_out == self.c:
            return 0, self.c
        return task_id * self.c, (task_id + 1) * self.c

    def start_task(self, task_id):
        if self.method == 'from_scratch' and task_id > 0:
            self.mnet.load_state_dict(self._new_mnet().state_dict())
        self.params = list(self.mnet.internal_params)
        self.optimizer = _adam(self.params, self.config)

    def _targets(self, task_id, y):
        if self.class_incremental and self.data.split_classes:
            return self.data.to_global(task_id, y)
        return y

    def _penalty(self, task_id):
        if task_id == 0 or self.config.beta == 0:
            return None
        if self.method in ('ewc', 'online_ewc'):
            from utils.ewc_regularizer import ewc_regularizer

            online = self.method == 'online_ewc'
            return ewc_regularizer(task_id, self.params, self.mnet, online=online, gamma=self.config.ewc_gamma)
        if self.method == 'si':
            from utils.si_regularizer import si_regularizer

            return si_regularizer(self.mnet, self.params)
        return None

    def train_step(self, task_id, x, y):
        self.optimizer.zero_grad(set_to_none=True)
        lo, hi = self._train_slice(task_id)
        loss = F.cross_entropy(self.mnet(x)[:, lo:hi], self._targets(task_id, y))
        penalty = self._penalty(task_id)
        if penalty is not None:
            loss = loss + self.config.beta * penalty
        loss.backward()
        if self.method == 'si':
            from utils.si_regularizer import si_post_optim_step, si_pre_optim_step

            si_pre_optim_step(self.mnet, self.params)
            self.optimizer.step()
            si_post_optim_step(self.mnet, self.params)
        else:
            self.optimizer.step()
        return loss.detach()

    def end_task(self, task_id, data):
        if self.method in ('ewc', 'online_ewc'):
            from utils.ewc_regularizer import compute_fisher

            lo, hi = self._train_slice(task_id)
            compute_fisher(task_id, data.fisher_handler(task_id), self.params, self.device, self.mnet,
                           online=self.method == 'online_ewc', gamma=self.config.ewc_gamma,
                           n_max=self.config.n_fisher, allowed_outputs=list(range(lo, hi)))
        elif self.method == 'si':
            from utils.si_regularizer import si_compute_importance

            si_compute_importance(self.mnet, self.params, epsilon=self.config.si_epsilon)
        elif self.method == 'from_scratch':
            self.snapshots.append([p.detach().clone() for p in self.mnet.internal_params])

    @torch.no_grad()
    def task_logits(self, task_id, x):
        weights = self.snapshots[task_id] if self.method == 'from_scratch' else None
        lo, hi = (task_id * self.c, (task_id + 1) * self.c) if self.n_out > self.c else (0, self.c)
        return self.mnet(x, weights=weights)[:, lo:hi]

    @torch.no_grad()
    def class_incremental_logits(self, x, num_tasks):
        """Logits over all classes seen after ``num_tasks`` tasks (CL3 without task inference)."""
        return self.mnet(x)[:, :num_tasks * self.c] if self.data.split_classes else self.mnet(x)[:, :self.c]

    def state_dict(self):
        return {'modules': self.modules.state_dict(), 'snapshots': self.snapshots}

    def load_state_dict(self, state):
        own = self.modules.state_dict()
        for key, value in state['modules'].items():
            if key not in own:
                # Regularizer state (EWC Fisher, SI importances) lives in buffers created after task 0.
                module_name, buffer_name = key.rsplit('.', 1)
                self.modules.get_submodule(module_name).register_buffer(buffer_name, value.clone())
        self.modules.load_state_dict(state['modules'])
        self.snapshots = [list(ws) for ws in state['snapshots']]


class HATMethod:
    r"""HAT on a multi-head MLP: task ``t`` reads outputs ``[t*c, (t+1)*c)`` and gates hidden layer ``l`` by
    ``a^t_l = sigma(s e^t_l)`` (the context-mod gains of the MLP carry the masks, after the activation).

    Within a task, ``s`` climbs from ``1/s_max`` to ``s_max`` over the ``B = ceil(N_t / batch_size)`` batches of
    each pass over the task's training data (:func:`utils.hat.s_schedule`) and evaluation uses ``s_max``. The
    loss is ``CE + c * R`` with the mask sparsity regularizer ``R`` (:class:`utils.hat.HATMaskSparsityReg`,
    ``c = --hat_lambda``). After ``backward()`` the gradient of every weight between units used by earlier
    tasks is multiplied by ``1 - min(a^{<t}_i, a^{<t}_j)`` (old heads count as used output units), the
    embedding gradients are compensated for the slope, and after the step embeddings are clamped to +-6. At
    the end of a task its masks at ``s_max`` join the cumulative masks ``a^{<=t} = max(a^{<t}, a^t)``.

    A fresh Adam per task with zero weight decay: a gradient of exactly 0 then never moves a frozen weight
    (Adam's moments stay 0), whereas weight decay or carried-over moments would. Adam's step is invariant to
    a constant scale of a weight's gradient, so a nearly-but-not-fully used unit (``a^{<t} = 1 - 1e-5``) would
    still take full-size steps; the step itself is therefore scaled by the same factor
    ``1 - min(a^{<t}_i, a^{<t}_j)``, which gives Adam the meaning the factor has for SGD.
    """

    uses_task_inference = True

    def __init__(self, config, data, device):
        from utils.hat import HATMasks, HATMaskSparsityReg

        self.config, self.device, self.data = config, device, data
        self.c = data.classes_per_task
        self.n_out = self.c * data.num_tasks
        self.mnet = get_mnet_model(config, 'mlp', data.in_shape_for('mlp'), [self.n_out], device,
                                   use_context_mod=True, context_mod_no_weights=True,
                                   no_last_layer_context_mod=True, context_mod_post_activation=True)
        hidden = [w.shape[0] for w in self.mnet.layer_weight_tensors[:-1]]
        self.hat = HATMasks(data.num_tasks, hidden, s_max=config.hat_smax).to(device)
        self.sparsity_reg = HATMaskSparsityReg(config.hat_lambda)
        self.modules = nn.ModuleDict({'mnet': self.mnet, 'hat': self.hat})

    def start_task(self, task_id):
        self.batches_per_epoch = -(-self.data.num_train(task_id) // self.config.batch_size)
        self.step_in_task = 0
        # Output units of earlier tasks' heads are "used": their incoming weights from used units freeze.
        self.used_heads = (torch.arange(self.n_out, device=self.device) < task_id * self.c).float()
        params = list(self.mnet.internal_params) + list(self.hat.task_embs)
        self.optimizer = _adam(params, self.config)
        self.masked_params, self.step_factors = self._step_factors()

    def _step_factors(self):
        """Every layer weight and bias with its factor ``1 - min(a^{<t}_i, a^{<t}_j)`` (constant per task)."""
        from utils.hat import weight_grad_multiplier

        weights, biases = self.mnet.layer_weight_tensors, self.mnet.layer_bias_vectors
        unit_prev = self.hat.prev_masks + [self.used_heads]
        params, factors = [], []
        for l, (weight, bias) in enumerate(zip(weights, biases)):
            params.append(weight)
            factors.append(weight_grad_multiplier(unit_prev[l], unit_prev[l - 1] if l > 0 else None,
                                                  weight.shape))
            if bias is not None:
                params.append(bias)
                factors.append(1.0 - unit_prev[l])
        return params, factors

    def train_step(self, task_id, x, y):
        from utils.hat import s_schedule

        s = s_schedule(self.step_in_task % self.batches_per_epoch, self.batches_per_epoch, self.hat.s_max)
        self.step_in_task += 1
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.mnet(x, weights={'mod_weights': self.hat.context_mod_weights(task_id, s)})
        lo, hi = task_id * self.c, (task_id + 1) * self.c
        reg, _ = self.sparsity_reg(self.hat.get_masks(task_id, s), self.hat.prev_masks)
        loss = F.cross_entropy(logits[:, lo:hi], y) + reg
        loss.backward()
        self.hat.adjust_grads_(self.mnet.layer_weight_tensors, self.mnet.layer_bias_vectors, s,
                               out_prev=self.used_heads)
        before = [p.detach().clone() for p in self.masked_params]
        self.optimizer.step()
        with torch.no_grad():
            for param, start, factor in zip(self.masked_params, before, self.step_factors):
                param.copy_(start.addcmul_(param - start, factor))
        self.hat.clamp_embeddings_()
        return loss.detach()

    def end_task(self, task_id, data):
        self.hat.update_cumulative_masks(task_id)

    @torch.no_grad()
    def task_logits(self, task_id, x):
        logits = self.mnet(x, weights={'mod_weights': self.hat.context_mod_weights(task_id)})
        return logits[:, task_id * self.c:(task_id + 1) * self.c]

    @torch.no_grad()
    def stacked_task_logits(self, x, num_tasks):
        """Logits ``[K, B, c]`` of ``x`` under the masks (at ``s_max``) and head of tasks ``0..K-1``, in one
        batched forward over the K mask sets."""
        mod_weights = []
        for masks in self.hat.get_masks(list(range(num_tasks))):  # per layer [K, N_l]: gain, zero shift
            mod_weights.extend([masks, torch.zeros_like(masks)])
        logits = self.mnet.forward_batch(x, mod_weights)  # [K, B, T*c]
        heads = logits[:, :, :num_tasks * self.c].reshape(num_tasks, x.shape[0], num_tasks, self.c)
        return heads.diagonal(dim1=0, dim2=2).permute(2, 0, 1)

    def state_dict(self):
        return {'modules': self.modules.state_dict()}

    def load_state_dict(self, state):
        self.modules.load_state_dict(state['modules'])


def make_method(config, data, device):
    if config.method == 'hnet':
        return HnetMethod(config, data, device)
    if config.method == 'hat':
        return HATMethod(config, data, device)
    return MnetMethod(config, data, device)
