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


def train_student(student, X, *, labels=None, teacher_logits=None, labeled=None,
                  temperature: float = 4.0, alpha: float = 0.9, steps: int = 1000,
                  lr: float = 3e-3, batch_size: int = 128, seed: int = 0):
    """Train ``student`` with Adam for exactly ``steps`` mini-batches, on labels or a teacher.

    Every student of a comparison gets the same number of gradient steps and batch size, so a
    difference between them is the targets', not the training budget's.

    Parameters
    ----------
    student : torch.nn.Module
        Trained in place and returned in eval mode.
    X : torch.Tensor
        The rows the student may see (labelled and unlabelled).
    labels : torch.Tensor, optional
        Class targets per row of ``X`` (the true labels, or a teacher's hard labels); with
        ``labeled``, only those rows have one.
    teacher_logits : torch.Tensor, optional
        The teacher's logits on ``X``: the loss is then ``alpha * T**2 * KL`` on every row
        plus ``(1 - alpha) * CE`` on the labelled rows (:func:`distillation_loss`).
    labeled : torch.Tensor of bool, optional
        Which rows of ``X`` carry a label (default: all when ``labels`` is given). Without a
        teacher, only those rows are sampled.
    temperature, alpha : float
        See :func:`distillation_loss`.
    steps, lr, batch_size, seed : training settings (rows sampled with replacement, seeded).

    Returns
    -------
    torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> g = torch.Generator().manual_seed(0)
    >>> X = torch.randn(200, 4, generator=g); y = (X[:, 0] > 0).long()
    >>> teacher = train_student(nn.Linear(4, 2), X, labels=y, steps=200, lr=0.05)
    >>> with torch.no_grad():
    ...     z = teacher(X)
    >>> student = train_student(nn.Linear(4, 2), X, teacher_logits=z, steps=200, lr=0.05)
    >>> bool((student(X).argmax(1) == y).float().mean() > 0.9)
    True
    """
    import torch
    import torch.nn.functional as F

    func = "train_student"
    steps = check_int(func, "steps", steps, low=0)
    batch_size = check_int(func, "batch_size", batch_size, low=1)
    check_number(func, "lr", lr, low=0, low_open=True)
    t = check_number(func, "temperature", temperature, low=0, low_open=True)
    alpha = check_fraction(func, "alpha", alpha)
    if labels is None and teacher_logits is None:
        raise ValueError(f"{func}(): expected labels=..., teacher_logits=... or both")
    for name, v in (("labels", labels), ("teacher_logits", teacher_logits)):
        if v is not None and len(v) != len(X):
            raise ValueError(f"{func}({name}=...): expected one per row of X ({len(X)}), got {len(v)}")
    mask = torch.ones(len(X), dtype=torch.bool) if labeled is None else torch.as_tensor(labeled).bool()
    if mask.shape != (len(X),) or (labels is not None and not bool(mask.any())):
        raise ValueError(f"{func}(labeled=...): expected a boolean mask over the {len(X)} rows "
                         "with at least one True")
    rows = torch.arange(len(X)) if teacher_logits is not None else torch.nonzero(mask).ravel()
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    student.train()
    for _ in range(steps):
        idx = rows[torch.randint(0, len(rows), (batch_size,), generator=gen)]
        logits = student(X[idx])
        if teacher_logits is None:
            loss = F.cross_entropy(logits, labels[idx])
        else:
            loss = alpha * distillation_loss(logits, teacher_logits[idx], None, temperature=t, alpha=1.0)
            m = mask[idx]
            if labels is not None and alpha < 1.0 and bool(m.any()):
                loss = loss + (1.0 - alpha) * F.cross_entropy(logits[m], labels[idx][m])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return student.eval()


STUDENT_KINDS = ("scratch", "hard labels", "distilled")


def distill_students(teacher, data, sizes, *, steps: int = 1500, temperature: float = 4.0,
                     alpha: float = 0.9, lr: float = 3e-3, batch_size: int = 128,
                     seed: int = 0) -> dict:
    """Three students of shape ``sizes``, same start and same number of steps, three targets.

    - ``"scratch"``: the true labels of the labelled rows (``data.X_train``), nothing else;
    - ``"hard labels"``: the teacher's predicted class on the labelled and unlabelled rows
      (``data.X_train`` and ``data.X_pool``);
    - ``"distilled"``: the teacher's soft targets at ``temperature`` on the same rows, plus the
      true labels of the labelled rows with weight ``1 - alpha``.

    No leakage: the teacher must have been trained on ``data.X_train`` alone (the rows whose
    labels the students may use); the pool's labels exist nowhere, the test rows are untouched.

    Returns
    -------
    dict
        ``{kind: student}``, each in eval mode.
    """
    import torch

    from mlscale_lab.complexity import pruning as P

    X_all = torch.cat([data.X_train, data.X_pool])
    labeled = torch.zeros(len(X_all), dtype=torch.bool)
    labeled[: len(data.X_train)] = True
    teacher.eval()
    with torch.no_grad():
        logits = teacher(X_all)
    true = torch.cat([data.y_train, torch.zeros(len(data.X_pool), dtype=data.y_train.dtype)])
    common = dict(steps=steps, lr=lr, batch_size=batch_size, seed=seed)
    out = {
        "scratch": train_student(P.make_mlp(sizes, seed=seed), X_all, labels=true, labeled=labeled, **common),
        "hard labels": train_student(P.make_mlp(sizes, seed=seed), X_all, labels=logits.argmax(1), **common),
        "distilled": train_student(P.make_mlp(sizes, seed=seed), X_all, labels=true, labeled=labeled,
                                   teacher_logits=logits, temperature=temperature, alpha=alpha, **common),
    }
    return out


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
