"""Plausible wrong answers to lab 03's exercises.

tests/exercise_trials.py runs each one against its exercise's test cells in the executed lab;
only the reference answer may pass. Each exercise has the misconception it is about, an
off-by-one, and a lazy answer that hands the work to a helper.
"""

WRONG_ANSWERS = {
    "lab03-prune-90": [
        # lazy: the lab's whole schedule in one call
        "def prune_and_finetune(model, data):\n"
        "    P.iterative_prune(model, data, sparsity=0.9, steps=3, epochs_per_step=3,\n"
        "                      final_epochs=6, lr=LR)\n"
        "    return model",
        # misconception: prune once, no fine-tuning (masks alone keep the accuracy?)
        "def prune_and_finetune(model, data):\n"
        "    P.prune_global(model, 0.9)\n"
        "    return model",
        # off by one: the last of the three steps is skipped (78% sparsity, not 90%)
        "def prune_and_finetune(model, data):\n"
        "    for k, amount in enumerate(P.step_amounts(0.9, 3)[:-1]):\n"
        "        P.prune_global(model, amount)\n"
        "        P.train(model, data.X_train, data.y_train, epochs=3, lr=LR, seed=100 + k)\n"
        "    P.train(model, data.X_train, data.y_train, epochs=6, lr=LR, seed=200)\n"
        "    return model",
    ],
    "lab03-csr-bytes": [
        # off by one: indptr has rows + 1 entries, not rows
        "def csr_nbytes(weight, value_bytes=4, index_bytes=4):\n"
        "    w = np.asarray(weight.detach() if hasattr(weight, 'detach') else weight)\n"
        "    if w.ndim != 2:\n"
        "        raise ValueError('weight must be 2-D')\n"
        "    return w.shape[0] * index_bytes + int(np.count_nonzero(w)) * (index_bytes + value_bytes)",
        # misconception: only positive weights count as non-zero
        "def csr_nbytes(weight, value_bytes=4, index_bytes=4):\n"
        "    w = np.asarray(weight.detach() if hasattr(weight, 'detach') else weight)\n"
        "    if w.ndim != 2:\n"
        "        raise ValueError('weight must be 2-D')\n"
        "    return (w.shape[0] + 1) * index_bytes + int((w > 0).sum()) * (index_bytes + value_bytes)",
        # misconception: zeros are stored too
        "def csr_nbytes(weight, value_bytes=4, index_bytes=4):\n"
        "    w = np.asarray(weight.detach() if hasattr(weight, 'detach') else weight)\n"
        "    if w.ndim != 2:\n"
        "        raise ValueError('weight must be 2-D')\n"
        "    return (w.shape[0] + 1) * index_bytes + w.size * (index_bytes + value_bytes)",
        # lazy: scipy's arrays, whatever value_bytes and index_bytes say
        "import scipy.sparse\n"
        "def csr_nbytes(weight, value_bytes=4, index_bytes=4):\n"
        "    w = np.asarray(weight.detach() if hasattr(weight, 'detach') else weight, dtype=np.float32)\n"
        "    if w.ndim != 2:\n"
        "        raise ValueError('weight must be 2-D')\n"
        "    m = scipy.sparse.csr_matrix(w)\n"
        "    return m.data.nbytes + m.indices.nbytes + m.indptr.nbytes",
    ],
    "lab03-remove-neurons": [
        # misconception: a removed neuron outputs nothing (relu(bias) dropped)
        "def remove_dead_neurons(first, second):\n"
        "    with torch.no_grad():\n"
        "        keep = first.weight.abs().sum(dim=1) != 0\n"
        "        a = torch.nn.Linear(first.in_features, int(keep.sum()))\n"
        "        b = torch.nn.Linear(int(keep.sum()), second.out_features)\n"
        "        a.weight.copy_(first.weight[keep]); a.bias.copy_(first.bias[keep])\n"
        "        b.weight.copy_(second.weight[:, keep]); b.bias.copy_(second.bias)\n"
        "    return a, b",
        # misconception: folds the bias without the ReLU
        "def remove_dead_neurons(first, second):\n"
        "    with torch.no_grad():\n"
        "        keep = first.weight.abs().sum(dim=1) != 0\n"
        "        a = torch.nn.Linear(first.in_features, int(keep.sum()))\n"
        "        b = torch.nn.Linear(int(keep.sum()), second.out_features)\n"
        "        a.weight.copy_(first.weight[keep]); a.bias.copy_(first.bias[keep])\n"
        "        b.weight.copy_(second.weight[:, keep])\n"
        "        b.bias.copy_(second.bias + second.weight[:, ~keep] @ first.bias[~keep])\n"
        "    return a, b",
        # off by one: keeps the next layer's rows, not its columns, for the live neurons
        "def remove_dead_neurons(first, second):\n"
        "    with torch.no_grad():\n"
        "        keep = first.weight.abs().sum(dim=1) != 0\n"
        "        n = int(keep.sum())\n"
        "        a = torch.nn.Linear(first.in_features, n)\n"
        "        b = torch.nn.Linear(n, second.out_features)\n"
        "        a.weight.copy_(first.weight[keep]); a.bias.copy_(first.bias[keep])\n"
        "        b.weight.copy_(second.weight[:, :n])\n"
        "        b.bias.copy_(second.bias + second.weight[:, ~keep] @ torch.relu(first.bias[~keep]))\n"
        "    return a, b",
        # lazy: the lab's helper
        "def remove_dead_neurons(first, second):\n"
        "    small = P.shrink_linear_stack(torch.nn.Sequential(first, torch.nn.ReLU(), second))\n"
        "    return small[0], small[2]",
    ],
}
