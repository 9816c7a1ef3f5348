"""mrmp.torch_compat: torch's Adam without its compiler import, the same updates bitwise."""

import copy
import subprocess
import sys

import torch
from torch.nn import functional as F

from mrmp.torch_compat import Adam


def _train(optimizer_class, model, steps=25, resume_at=None):
    """Adam steps with weight decay and a changing learning rate; optionally through a state dict round trip
    (into torch's own Adam) at `resume_at`."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 8, generator=gen), torch.randint(0, 3, (64,), generator=gen)
    opt = optimizer_class(model.parameters(), lr=1e-2, weight_decay=1e-3, foreach=True)
    for i in range(steps):
        if i == resume_at:
            state = opt.state_dict()
            opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3, foreach=True)
            opt.load_state_dict(state)
        for g in opt.param_groups:
            g["lr"] = 1e-2 * 0.9**i
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return opt


def test_adam_makes_torchs_updates_bitwise_and_its_state_dicts_load_both_ways():
    torch.manual_seed(0)
    ref = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    ours, crossed = copy.deepcopy(ref), copy.deepcopy(ref)
    ref_opt = _train(torch.optim.Adam, ref)
    our_opt = _train(Adam, ours)
    _train(Adam, crossed, resume_at=12)  # ours → torch's state dict → torch's Adam
    for a, b, c in zip(ref.parameters(), ours.parameters(), crossed.parameters()):
        assert torch.equal(a, b) and torch.equal(a, c)
    mine, theirs = our_opt.state_dict(), ref_opt.state_dict()
    assert mine["param_groups"] == theirs["param_groups"]
    for k, st in theirs["state"].items():
        assert all(torch.equal(st[n], mine["state"][k][n]) for n in st)
    back = Adam(ours.parameters(), lr=1.0)
    back.load_state_dict(theirs)  # torch's → ours
    assert back.param_groups[0]["lr"] == theirs["param_groups"][0]["lr"]


def test_a_training_run_never_imports_torchs_compiler():
    """Every entry point of torch.optim imports torch._dynamo (~1 s of CPU per process); the trainer must not."""
    code = (
        "import sys\n"
        "from mrmp.config import load_config\n"
        "from mrmp.train import Trainer\n"
        "from tests.toy import toy_data\n"
        "t = Trainer(load_config(None, ['train.epochs=3', 'train.batch_size=32']), toy_data())\n"
        "t.fit()\n"
        "t.load_state(t.state())\n"
        "t.evaluate()\n"
        "print('dynamo', 'torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "dynamo False" in out.stdout
