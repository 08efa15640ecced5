"""Batched trials: K heads trained together, K trials per read of a batch.

:func:`fit_batched` trains K members ``(HeadConfig, TrainConfig)`` on one loaded
:class:`~embedhead.heads.data.HeadData` in ONE pass over the data: every batch is gathered once
and goes through all K heads at once (grouped matmuls over stacked weights). Each member gets
exactly what :func:`embedhead.heads.train.fit` would give it alone (to float rounding):

* the same initial weights: member k is built as ``fit`` builds it (``torch.manual_seed(seed)``
  then :func:`~embedhead.heads.models.build_head`), as a real :class:`SiameseHead` whose
  parameters are the ones trained;
* its own optimiser state: one ``torch.optim.Adam`` with one parameter group per member (its own
  ``lr`` and ``weight_decay``), i.e. the same per-parameter Adam arithmetic as a lone run;
* its own dropout masks: member k draws them from its own ``torch.Generator``, set to the global
  RNG state that ``fit`` has right after building the head (``fit`` draws its dropout masks from
  the global RNG and nothing else from it), in the same order and shapes; so on CPU the masks
  are bit-for-bit those of the lone run. (On CUDA, ``fit``'s dropout uses the fused CUDA kernel
  and the CUDA generator; there each member draws from its own CUDA generator seeded from
  ``seed``: same distribution, not the same masks.)
* its own epochs, early stopping (``patience``), ``keep`` rule, threshold rule; a member that
  stops, whose loss turns non-finite, or whose ``progress`` callback raises (an Optuna pruner's
  ``TrialPruned``) is dropped from the stack and the others go on.

What members must share (:func:`batch_key`): head kind, task, ``d_model``, conv channels and
kernel size, activation, number of hidden layers, and everything that fixes the order of the
batches and the initialisation: ``seed``, ``batch_size``, ``train_size``, ``eval_batch_size``.
Hidden *widths* may differ: narrower members are zero-padded to the widest (the sweep groups only
widths within :data:`MAX_PAD_RATIO` of each other, :func:`group_members`). That is exact, not
an approximation: a padded unit has zero weights in and out and zero bias, so its activation is
``act(0) = 0`` (relu, gelu, tanh), it adds nothing downstream and no gradient reaches the real
weights through it; the padding is a constant, never a parameter.

Shapes (K active members, B batch, L positions, D d_model, C conv channels, H_i the widest
member's i-th hidden width)::

    thesis: x1, x2 (B, L, D) + masks (B, L) -> conv of all members as one conv with K*C output
            channels -> (B, L, K*C) -> masked mean (B, K, C) -> features (K, B, 4C)
    pooled: x1, x2 (B, D) -> features (B, 4D), shared -> first layer as one linear (B, K*H_1)
    hidden layer i: (K, B, H_{i-1}) @ stacked padded weights (K, H_{i-1}, H_i) -> (K, B, H_i)
                    (stored in that (K, in, out) layout, nn.Linear's transposed)
    output: (K, B, H_last) -> (K, B) raw values; per-member loss (K,), summed for backward
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from embedhead.errors import ConfigError
from embedhead.heads.config import HeadConfig, TrainConfig
from embedhead.heads.data import HeadData, PairBatch, PairSource
from embedhead.heads.metrics import (
    DEFAULT_THRESHOLD,
    choose_threshold,
    compute_metrics,
    quick_metrics,
)
from embedhead.heads.models import ACTIVATIONS, SiameseHead, ThesisHead, build_head
from embedhead.heads.train import FitResult, NonFiniteLossError, training_subset

__all__ = ["MAX_PAD_RATIO", "BatchKey", "batch_key", "fit_batched", "group_members"]

ProgressFn = Callable[[dict[str, Any]], None]
BatchKey = tuple[Any, ...]
Outcome = FitResult | Exception


def batch_key(head: HeadConfig, train: TrainConfig) -> BatchKey:
    """What K members must share to train in one pass (see module docstring)."""
    return (
        head.kind,
        head.task,
        head.d_model,
        head.channels if head.kind == "thesis" else None,
        head.kernel_size if head.kind == "thesis" else None,
        head.activation,
        len(head.hidden_sizes),
        train.seed,
        train.batch_size,
        train.train_size,
        train.eval_batch_size,
        train.device,
        train.loader,
    )


MAX_PAD_RATIO = 1.25
"""group_members puts trials together only when, layer by layer, the widest member is at most
this factor wider than the narrowest: padding is exact but costs the compute of the widest."""


def group_members(
    members: Sequence[tuple[HeadConfig, TrainConfig]], max_size: int
) -> list[list[int]]:
    """Indices of ``members`` grouped by :func:`batch_key` (first-seen order), at most
    ``max_size`` per group, and only widths within :data:`MAX_PAD_RATIO` of each other."""
    if max_size < 1:
        raise ConfigError(f"batch size of trials must be >= 1, not {max_size}")
    groups: dict[BatchKey, list[list[int]]] = {}

    def fits(chunk: list[int], widths: tuple[int, ...]) -> bool:
        if len(chunk) >= max_size:
            return False
        for layer, width in enumerate(widths):
            column = [members[j][0].hidden_sizes[layer] for j in chunk] + [width]
            if max(column) > MAX_PAD_RATIO * min(column):
                return False
        return True

    for i, (head, train) in enumerate(members):
        chunks = groups.setdefault(batch_key(head, train), [])
        home = next((c for c in chunks if fits(c, head.hidden_sizes)), None)
        if home is None:
            chunks.append([i])
        else:
            home.append(i)
    return [chunk for chunks in groups.values() for chunk in chunks]


@dataclass
class _Member:
    """One member's head, dropout generator and running state."""

    head: SiameseHead
    head_config: HeadConfig
    config: TrainConfig
    generator: torch.Generator
    progress: ProgressFn | None
    history: list[dict[str, Any]] = field(default_factory=list)
    best_loss: float = float("inf")
    best_epoch: int = 0
    since_best: int = 0
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    total: float = 0.0
    outcome: Exception | None = None
    done: bool = False


def _linears(head: SiameseHead) -> list[nn.Linear]:
    """fc1, fc2, ..., fc_out of a head's MLP."""
    hidden = [mod for mod in head.mlp.hidden if isinstance(mod, nn.Linear)]
    return [*hidden, head.mlp.fc_out]


def _conv(head: SiameseHead) -> nn.Conv1d:
    conv = getattr(head, "conv", None)
    if not isinstance(conv, nn.Conv1d):
        raise ConfigError(f"{type(head).__name__} has no convolution")
    return conv


ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults, as fit uses them
ADAM_EPS = 1e-8


class _Stack:
    """The stacked parameters of the active members, their forward pass and their Adam.

    Parameters are leaves of shape (K, ...) (zero-padded to the widest member), so a forward
    pass costs one grouped matmul per layer, whatever K. Adam is ``torch.optim.Adam``'s
    single-tensor arithmetic, op for op, on each member's slice with its own ``lr`` and
    ``weight_decay``; padded entries have zero gradient and stay zero.
    """

    def __init__(self, members: Sequence[_Member]) -> None:
        self.members = list(members)
        first = self.members[0].head_config
        self.kind = first.kind
        self.act = ACTIVATIONS[first.activation]()
        depth = len(first.hidden_sizes)
        self.widths = [
            max(m.head_config.hidden_sizes[i] for m in self.members) for i in range(depth)
        ]
        head = self.members[0].head
        self.in_width = 4 * (
            head.config.channels if isinstance(head, ThesisHead) else first.d_model
        )
        self.same_padding = head.same_padding if isinstance(head, ThesisHead) else (0, 0)
        self.kernel_size = first.kernel_size
        with torch.no_grad():
            self.params: list[torch.Tensor] = []
            if self.kind == "thesis":
                convs = [_conv(m.head) for m in self.members]
                self.params += [
                    torch.stack([c.weight.detach() for c in convs]),  # (K, C, D, k)
                    torch.stack([c.bias.detach() for c in convs if c.bias is not None]),  # (K, C)
                ]
            for i in range(depth + 1):
                out_w = self.widths[i] if i < depth else 1
                in_w = self.in_width if i == 0 else self.widths[i - 1]
                ws, bs = [], []
                for m in self.members:
                    lin = _linears(m.head)[i]
                    w, b = lin.weight.detach(), lin.bias.detach()
                    w = F.pad(w, (0, in_w - w.shape[1], 0, out_w - w.shape[0]))
                    ws.append(w if self._rows_out(i) else w.t())
                    bs.append(F.pad(b, (0, out_w - b.shape[0])))
                self.params += [torch.stack(ws), torch.stack(bs)]
        for p in self.params:
            p.requires_grad_(True)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = 0
        self.lr = [float(m.config.lr) for m in self.members]
        self.weight_decay = [float(m.config.weight_decay) for m in self.members]

    def _rows_out(self, layer: int) -> bool:
        """Whether layer ``layer``'s stacked weight is (K, out, in) like nn.Linear's (the pooled
        head's first layer, run as one F.linear over the shared features) rather than
        (K, in, out): a right-hand side of baddbmm whose gradient then needs no transposed copy
        (measured: that copy was the costliest op of a step)."""
        return layer == 0 and self.kind != "thesis"

    def keep(self, index: Sequence[int]) -> None:
        """Keep only the members at ``index`` (their parameters and Adam state)."""
        idx = torch.tensor(list(index), dtype=torch.long, device=self.params[0].device)
        with torch.no_grad():
            self.params = [p.detach()[idx].clone().requires_grad_(True) for p in self.params]
        self.exp_avg = [t[idx].clone() for t in self.exp_avg]
        self.exp_avg_sq = [t[idx].clone() for t in self.exp_avg_sq]
        self.members = [self.members[i] for i in index]
        self.lr = [self.lr[i] for i in index]
        self.weight_decay = [self.weight_decay[i] for i in index]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One Adam step of every member: torch.optim.Adam's single-tensor update, on each
        member's slice in turn (every op of one slice before the next: the slice stays in cache,
        where whole-stack passes measured 3x slower on the CPU) with its own lr and decay."""
        self.steps += 1
        beta1, beta2 = ADAM_BETAS
        bias_correction1 = 1 - beta1**self.steps
        bias_correction2_sqrt = (1 - beta2**self.steps) ** 0.5
        steps = [-lr / bias_correction1 for lr in self.lr]
        for p, exp_avg, exp_avg_sq in zip(self.params, self.exp_avg, self.exp_avg_sq, strict=True):
            if p.grad is None:
                continue
            for k, (step, decay) in enumerate(zip(steps, self.weight_decay, strict=True)):
                grad = p.grad[k] if decay == 0 else p.grad[k].add(p[k], alpha=decay)
                exp_avg[k].lerp_(grad, 1 - beta1)
                exp_avg_sq[k].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (exp_avg_sq[k].sqrt() / bias_correction2_sqrt).add_(ADAM_EPS)
                p[k].addcdiv_(exp_avg[k], denom, value=step)

    def store_into(self, k: int, head: SiameseHead) -> None:
        """Copy member k's (unpadded) parameters into its real head."""
        with torch.no_grad():
            params = iter(self.params)
            if self.kind == "thesis":
                conv = _conv(head)
                conv.weight.copy_(next(params)[k])
                bias = next(params)[k]
                if conv.bias is not None:
                    conv.bias.copy_(bias)
            for layer, lin in enumerate(_linears(head)):
                w, b = next(params)[k], next(params)[k]
                out_w, in_w = lin.weight.shape
                lin.weight.copy_(
                    w[:out_w, :in_w] if self._rows_out(layer) else w[:in_w, :out_w].t()
                )
                lin.bias.copy_(b[: lin.bias.shape[0]])

    def _encode(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Thesis: x (B, L, D), mask (B, L) -> (K, B, C), as ThesisHead.encode for each member."""
        w, b = self.params[0], self.params[1]
        k, c = w.shape[0], w.shape[1]
        weight, bias = w.reshape(k * c, *w.shape[2:]), b.reshape(k * c)  # (K*C, D, k), (K*C,)
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        keep = mask.to(x.dtype)
        if self.kernel_size == 1:
            h = self.act(F.linear(x, weight.squeeze(-1), bias))  # (B, L, K*C)
        else:
            x = x * keep.unsqueeze(-1)
            inputs = F.pad(x.transpose(1, 2), self.same_padding)
            h = self.act(F.conv1d(inputs, weight, bias)).transpose(1, 2)
        total = torch.bmm(keep.unsqueeze(1), h).squeeze(1)  # (B, K*C)
        pooled = total / keep.sum(dim=1, keepdim=True).clamp(min=1.0)
        return pooled.view(x.shape[0], k, c).transpose(0, 1)  # (K, B, C)

    def _dropout(self, h: torch.Tensor, i: int) -> torch.Tensor:
        """h (K, B, H_i): each member's own mask of its own width, drawn from its generator."""
        masks = []
        for m in self.members:
            width, p = m.head_config.hidden_sizes[i], m.head_config.dropout
            if p == 0:  # F.dropout draws nothing then
                noise = torch.ones((h.shape[1], width), dtype=h.dtype, device=h.device)
            else:
                noise = torch.empty((h.shape[1], width), dtype=h.dtype, device=h.device)
                noise.bernoulli_(1 - p, generator=m.generator).div_(1 - p)
            masks.append(F.pad(noise, (0, h.shape[2] - width)))
        return h * torch.stack(masks)

    def forward(self, batch: PairBatch, train: bool) -> torch.Tensor:
        """One batch -> raw outputs (K, B)."""
        layers = self.params[2:] if self.kind == "thesis" else self.params
        w, bias = layers[0], layers[1]
        if self.kind == "thesis":
            a, b = self._encode(batch.x1, batch.m1), self._encode(batch.x2, batch.m2)
            h = torch.cat([a, b, (a - b).abs(), a * b], dim=-1)  # (K, B, 4C)
            h = torch.baddbmm(bias.unsqueeze(1), h, w)
        else:
            a, b = batch.x1, batch.x2
            feats = torch.cat([a, b, (a - b).abs(), a * b], dim=-1)  # (B, 4D), shared
            k, width = w.shape[0], w.shape[1]
            h = F.linear(feats, w.reshape(k * width, -1), bias.reshape(-1))  # (B, K*H_1)
            h = h.view(feats.shape[0], k, width).transpose(0, 1)  # (K, B, H_1)
        for i in range(len(self.widths)):
            if i > 0:
                w, bias = layers[2 * i], layers[2 * i + 1]
                h = torch.baddbmm(bias.unsqueeze(1), h, w)
            h = self.act(h)
            if train:
                h = self._dropout(h, i)
        w, bias = layers[-2], layers[-1]
        return torch.baddbmm(bias.unsqueeze(1), h, w).squeeze(-1)  # (K, B)

    def scaled(self, targets: torch.Tensor) -> torch.Tensor:
        """targets (B,) -> (K, B) in each member's loss units."""
        rows = []
        for m in self.members:
            if m.head_config.task == "classification":
                rows.append(targets)
            else:
                rows.append((targets - m.head.target_mean) / m.head.target_std)
        return torch.stack(rows)

    def losses(self, raw: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """raw (K, B), targets (K, B) -> (K,) mean loss per member (as train._loss)."""
        if self.members[0].head_config.task == "classification":
            per = F.binary_cross_entropy_with_logits(raw, targets, reduction="none")
        else:
            per = F.mse_loss(raw, targets, reduction="none")
        return per.mean(dim=1)

    def outputs(self, raw: torch.Tensor) -> torch.Tensor:
        """raw (K, B) -> probabilities or original-unit scores (K, B) (SiameseHead.to_output)."""
        return torch.stack([m.head.to_output(raw[k]) for k, m in enumerate(self.members)])


@torch.no_grad()
def _predict(stack: _Stack, source: PairSource, batch_size: int) -> tuple[np.ndarray, list[float]]:
    """Outputs (K, N) of every member on ``source`` in table order and each mean loss."""
    outputs: list[np.ndarray] = []
    totals = [0.0] * len(stack.members)
    for batch in source.batches(batch_size):
        raw = stack.forward(batch, train=False)
        losses = stack.losses(raw, stack.scaled(batch.targets))
        for k in range(len(totals)):
            totals[k] += float(losses[k]) * raw.shape[1]
        outputs.append(stack.outputs(raw).cpu().numpy())
    k = len(stack.members)
    out = np.concatenate(outputs, axis=1) if outputs else np.zeros((k, 0), dtype=np.float32)
    return out, [t / max(len(source), 1) for t in totals]


def _drop_done(stack: _Stack) -> None:
    """Members that ended (stopped, pruned, diverged) leave the stack."""
    index = [k for k, m in enumerate(stack.members) if not m.done]
    if len(index) < len(stack.members) and index:
        stack.keep(index)
    elif not index:
        stack.members = []


def _fail_nonfinite(member: _Member, value: float, epoch: int, where: str) -> None:
    member.outcome = NonFiniteLossError(
        f"{where} loss is {value} at epoch {epoch}: the store may hold NaN/inf embeddings, or "
        "the learning rate is too high (try a lower --lr)"
    )
    member.done = True


def _build_member(head_config: HeadConfig, config: TrainConfig, device: torch.device) -> _Member:
    """A member initialised exactly as ``fit`` initialises its head (module docstring)."""
    torch.manual_seed(config.seed)
    head = build_head(head_config).to(device)
    if device.type == "cpu":
        generator = torch.Generator()
        generator.set_state(torch.get_rng_state())  # where fit's dropout draws start
    else:
        generator = torch.Generator(device=device).manual_seed(config.seed)
    state = {k: v.detach().clone() for k, v in head.state_dict().items()}
    return _Member(head, head_config, config, generator, None, best_state=state)


def fit_batched(
    members: Sequence[tuple[HeadConfig, TrainConfig]],
    data: HeadData,
    *,
    progress: Sequence[ProgressFn | None] | None = None,
) -> list[Outcome]:
    """Train every member in one pass over ``data``; one outcome per member, in order.

    An outcome is the member's :class:`~embedhead.heads.train.FitResult` (what ``fit`` would
    return), or the exception that ended it: :class:`~embedhead.heads.train.NonFiniteLossError`,
    or whatever its ``progress[k]`` callback raised (e.g. ``optuna.TrialPruned``). Members must
    share :func:`batch_key` (ConfigError otherwise). ``FitResult.elapsed_s`` is the time of the
    whole group.
    """
    if not members:
        return []
    keys = {batch_key(h, t) for h, t in members}
    if len(keys) > 1:
        raise ConfigError(f"batched members must share one batch key, got {sorted(map(str, keys))}")
    callbacks = list(progress) if progress is not None else [None] * len(members)
    if len(callbacks) != len(members):
        raise ConfigError(f"{len(callbacks)} progress callbacks for {len(members)} members")
    head0, config0 = members[0]
    if (head0.kind, head0.task) != (data.kind, data.task):
        raise ConfigError(
            f"head is {head0.kind}/{head0.task} but data were loaded for {data.kind}/{data.task}"
        )
    if head0.d_model != data.d_model:
        raise ConfigError(f"head d_model {head0.d_model} != store d_model {data.d_model}")
    start_time = time.perf_counter()
    train, val = data["train"], data["val"]
    device = train.device
    train = training_subset(train, config0)
    state = [_build_member(h, t, device) for h, t in members]
    for member, callback in zip(state, callbacks, strict=True):
        member.progress = callback
        if member.head_config.task == "regression":
            y = train.pairs.targets.astype(np.float64)
            std = float(y.std())
            member.head.set_target_scale(float(y.mean()), std if std > 0 else 1.0)
            member.best_state = {k: v.detach().clone() for k, v in member.head.state_dict().items()}
    stack = _Stack(state)
    generator = torch.Generator().manual_seed(config0.seed)  # the batch order, shared
    max_epochs = max(m.config.epochs for m in state)
    for epoch in range(1, max_epochs + 1):
        _drop_done(stack)
        if not stack.members:
            break
        order = train.epoch_order(generator, config0.batch_size)
        for m in stack.members:
            m.total = 0.0
        for batch in train.batches(config0.batch_size, order):
            _drop_done(stack)
            if not stack.members:
                break
            raw = stack.forward(batch, train=True)
            losses = stack.losses(raw, stack.scaled(batch.targets))
            values = losses.detach().cpu().tolist()
            finite = []
            for k, (m, value) in enumerate(zip(stack.members, values, strict=True)):
                if not np.isfinite(value):
                    _fail_nonfinite(m, value, epoch, "training")
                else:
                    finite.append(k)
                    m.total += value * raw.shape[1]
            stack.zero_grad()
            if finite:  # a diverged member's slice gets no gradient; it leaves the stack next
                losses[finite].sum().backward()
                stack.step()
        _drop_done(stack)
        if not stack.members:
            break
        val_outputs, val_losses = _predict(stack, val, config0.eval_batch_size)
        for k, m in enumerate(stack.members):
            if not np.isfinite(val_losses[k]):
                _fail_nonfinite(m, val_losses[k], epoch, "validation")
                continue
            row: dict[str, Any] = {
                "epoch": epoch,
                "train_loss": m.total / len(train),
                "val_loss": val_losses[k],
                "val": quick_metrics(m.head_config.task, val.pairs.targets, val_outputs[k]),
            }
            m.history.append(row)
            if m.progress is not None:
                try:
                    m.progress(row)
                except Exception as exc:  # a pruner's TrialPruned, a callback's error
                    m.outcome, m.done = exc, True
                    continue
            if val_losses[k] < m.best_loss:
                m.best_loss, m.best_epoch, m.since_best = val_losses[k], epoch, 0
                stack.store_into(k, m.head)
                m.best_state = {n: v.detach().clone() for n, v in m.head.state_dict().items()}
            else:
                m.since_best += 1
                if m.config.patience and m.since_best >= m.config.patience:
                    m.done = True
            if epoch >= m.config.epochs:
                m.done = True
            if m.done and m.outcome is None:
                stack.store_into(k, m.head)  # the last epoch's weights
    for k, m in enumerate(stack.members):  # still active after the last epoch
        if m.outcome is None:
            stack.store_into(k, m.head)
    finished = [m for m in state if m.outcome is None]
    for m in finished:
        if m.config.keep == "last":
            m.best_epoch = len(m.history)
        else:
            m.head.load_state_dict(m.best_state)
        m.head.eval()
    results: dict[int, FitResult] = {}
    if finished:
        stack = _Stack(finished)  # the kept weights, stacked again for one evaluation pass
        predicted = {
            name: _predict(stack, source, config0.eval_batch_size)
            for name, source in data.splits.items()
            if name != "train"
        }
        n_pairs = {name: len(s) for name, s in data.splits.items()} | {"train": len(train)}
        elapsed = time.perf_counter() - start_time
        for k, m in enumerate(finished):
            threshold: float | None = None
            if m.head_config.task == "classification":
                threshold = choose_threshold(
                    val.pairs.targets, predicted["val"][0][k], m.config.threshold
                )
            cut = DEFAULT_THRESHOLD if threshold is None else threshold
            metrics = {
                name: {
                    "loss": losses[k],
                    **compute_metrics(
                        m.head_config.task, data.splits[name].pairs.targets, outputs[k], cut
                    ),
                }
                for name, (outputs, losses) in predicted.items()
            }
            m.head.cpu()
            results[id(m)] = FitResult(
                m.head,
                m.head_config,
                m.config,
                m.history,
                m.best_epoch,
                metrics,
                n_pairs,
                elapsed,
                threshold,
            )
    out: list[Outcome] = []
    for m in state:
        if m.outcome is not None:
            out.append(m.outcome)
        else:
            out.append(results[id(m)])
    return out
