"""Knowledge distillation: a small student trained on a large teacher's softened outputs.

Hinton, Vinyals and Dean (2015): the teacher's logits divided by a temperature ``T > 1`` give
soft targets whose small probabilities carry what the teacher learned about which classes
look alike. The student minimises a mix of the KL divergence to those soft targets and the
usual cross-entropy on the labels. Gradients of the soft term shrink as ``1 / T**2``, so the
soft term is multiplied by ``T**2`` to keep its weight independent of the temperature.
"""

from __future__ import annotations

from mlscale_lab.validation import check_fraction, check_int, check_number


def distillation_loss(student_logits, teacher_logits, labels, *, temperature: float = 4.0,
                      alpha: float = 0.9):
    """``alpha * T**2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels)``.

    ``teacher_T`` and ``student_T`` are the softmax of the logits divided by ``T``; the KL
    divergence is averaged over the batch (``reduction="batchmean"``, the mathematical KL per
    example), the cross-entropy uses the student's raw logits.

    Parameters
    ----------
    student_logits, teacher_logits : torch.Tensor
        Shape ``(batch, classes)``; the teacher's are treated as constants.
    labels : torch.Tensor or None
        Class indices, shape ``(batch,)``; None (or ``alpha=1``) drops the label term.
    temperature : float > 0, default 4.0
    alpha : float in [0, 1], default 0.9
        Weight of the soft term.

    Returns
    -------
    torch.Tensor
        A scalar, differentiable with respect to ``student_logits``.

    Examples
    --------
    >>> import torch
    >>> s = torch.tensor([[2.0, 0.0, -1.0]])
    >>> float(distillation_loss(s, s, torch.tensor([0]), alpha=1.0))
    0.0
    >>> round(float(distillation_loss(s, s.flip(1), None, temperature=2.0, alpha=1.0)), 4)
    2.9297
    """
    import torch.nn.functional as F

    func = "distillation_loss"
    t = check_number(func, "temperature", temperature, low=0, low_open=True)
    alpha = check_fraction(func, "alpha", alpha)
    if student_logits.shape != teacher_logits.shape or student_logits.ndim != 2:
        raise ValueError(f"{func}(teacher_logits=...): expected the student's shape "
                         f"{tuple(student_logits.shape)} (batch, classes), got "
                         f"{tuple(teacher_logits.shape)}")
    if labels is None and alpha < 1.0:
        raise ValueError(f"{func}(labels=None): expected labels when alpha < 1 (alpha={alpha}); "
                         "pass alpha=1.0 to train on the soft targets alone")
    soft = F.kl_div(F.log_softmax(student_logits / t, dim=1),
                    F.softmax(teacher_logits.detach() / t, dim=1), reduction="batchmean")
    loss = alpha * t * t * soft
    if alpha < 1.0:
        loss = loss + (1.0 - alpha) * F.cross_entropy(student_logits, labels)
    return loss


def train_student(student, X, y, *, teacher=None, labeled=None, temperature: float = 4.0,
                  alpha: float = 0.9, epochs: int = 30, lr: float = 5e-3, batch_size: int = 128,
                  seed: int = 0):
    """Train ``student`` with Adam from labels alone (``teacher=None``) or distilled.

    Parameters
    ----------
    student : torch.nn.Module
        Trained in place and returned in eval mode.
    X, y : torch.Tensor
        Training inputs and labels.
    teacher : torch.nn.Module, optional
        With a teacher, each batch's loss is :func:`distillation_loss` on the teacher's logits
        (computed once, up front); without one, cross-entropy on the labels.
    labeled : torch.Tensor of bool, optional
        Which rows' labels may be used (all by default). With a teacher, the soft term uses
        every row and the label term only the labeled ones (the teacher labels the rest);
        without one, training uses the labeled rows only.
    temperature, alpha : float
        See :func:`distillation_loss`.
    epochs, lr, batch_size, seed : training settings (seeded mini-batch order).

    Returns
    -------
    torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> g = torch.Generator().manual_seed(0)
    >>> X = torch.randn(200, 4, generator=g); y = (X[:, 0] > 0).long()
    >>> teacher = train_student(nn.Linear(4, 2), X, y, epochs=20, lr=0.05)
    >>> student = train_student(nn.Linear(4, 2), X, y, teacher=teacher, epochs=20, lr=0.05)
    >>> bool((student(X).argmax(1) == y).float().mean() > 0.9)
    True
    """
    import torch
    import torch.nn.functional as F

    func = "train_student"
    epochs = check_int(func, "epochs", epochs, low=0)
    batch_size = check_int(func, "batch_size", batch_size, low=1)
    check_number(func, "lr", lr, low=0, low_open=True)
    check_number(func, "temperature", temperature, low=0, low_open=True)
    alpha = check_fraction(func, "alpha", alpha)
    if len(X) != len(y):
        raise ValueError(f"{func}(y=...): expected {len(X)} labels, one per row of X, got {len(y)}")
    mask = torch.ones(len(X), dtype=torch.bool) if labeled is None else torch.as_tensor(labeled).bool()
    if mask.shape != (len(X),) or not bool(mask.any()):
        raise ValueError(f"{func}(labeled=...): expected a boolean mask over the {len(X)} rows with "
                         "at least one True")
    if teacher is None:
        X, y, mask = X[mask], y[mask], mask[mask]
        soft = None
    else:
        teacher.eval()
        with torch.no_grad():
            soft = teacher(X)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    student.train()
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=gen)
        for start in range(0, len(X), batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            logits = student(X[idx])
            if soft is None:
                loss = F.cross_entropy(logits, y[idx])
            else:
                # the soft term uses every row; the label term only the labeled rows
                m = mask[idx]
                loss = alpha * distillation_loss(logits, soft[idx], None,
                                                 temperature=temperature, alpha=1.0)
                if alpha < 1.0 and bool(m.any()):
                    loss = loss + (1.0 - alpha) * F.cross_entropy(logits[m], y[idx][m])
            loss.backward()
            opt.step()
    return student.eval()


def soft_targets(logits, temperature: float):
    """The softmax of ``logits / temperature``: what the student is asked to match.

    Examples
    --------
    >>> import torch
    >>> soft_targets(torch.tensor([[2.0, 0.0]]), 1.0).double().round(decimals=3).tolist()
    [[0.881, 0.119]]
    >>> soft_targets(torch.tensor([[2.0, 0.0]]), 4.0).double().round(decimals=3).tolist()
    [[0.622, 0.378]]
    """
    import torch

    t = check_number("soft_targets", "temperature", temperature, low=0, low_open=True)
    return torch.softmax(torch.as_tensor(logits, dtype=torch.float32) / t, dim=-1)
