"""Losses and optimizers of the torch backend: names, values, factories and state that survives files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modularml import Loss, Optimizer
from modularml.backends import get_backend
from modularml.errors import InvalidArgumentError, NotRegisteredError


@pytest.fixture
def impl():
    return get_backend("torch")


def _inputs(name: str) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """Arguments for the loss ``name`` and the value of torch's functional version with reduction='none'."""
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(6, 4, generator=g) for _ in range(3))
    labels = torch.randint(0, 4, (6,), generator=g)
    signs = torch.where(torch.randn(6, generator=g) > 0, 1.0, -1.0)
    probs = torch.sigmoid(b)
    cases = {
        "mse": ((a, b), F.mse_loss(a, b, reduction="none")),
        "mae": ((a, b), F.l1_loss(a, b, reduction="none")),
        "l1": ((a, b), F.l1_loss(a, b, reduction="none")),
        "huber": ((a, b), F.huber_loss(a, b, reduction="none")),
        "smooth_l1": ((a, b), F.smooth_l1_loss(a, b, reduction="none")),
        "cross_entropy": ((a, labels), F.cross_entropy(a, labels, reduction="none")),
        "bce": ((torch.sigmoid(a), probs), F.binary_cross_entropy(torch.sigmoid(a), probs, reduction="none")),
        "bce_with_logits": ((a, probs), F.binary_cross_entropy_with_logits(a, probs, reduction="none")),
        "nll": ((F.log_softmax(a, 1), labels), F.nll_loss(F.log_softmax(a, 1), labels, reduction="none")),
        "kl_div": (
            (F.log_softmax(a, 1), F.softmax(b, 1)),
            F.kl_div(F.log_softmax(a, 1), F.softmax(b, 1), reduction="none"),
        ),
        "cosine_embedding": ((a, b, signs), F.cosine_embedding_loss(a, b, signs, reduction="none")),
        "triplet_margin": ((a, b, c), F.triplet_margin_loss(a, b, c, reduction="none")),
        "margin_ranking": ((a[:, 0], b[:, 0], signs), F.margin_ranking_loss(a[:, 0], b[:, 0], signs, reduction="none")),
    }
    return cases[name]


LOSS_NAMES = [
    "mse",
    "mae",
    "l1",
    "huber",
    "smooth_l1",
    "cross_entropy",
    "bce",
    "bce_with_logits",
    "nll",
    "kl_div",
    "cosine_embedding",
    "triplet_margin",
    "margin_ranking",
]


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss")
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_losses_by_name_match_torch_functional(name: str) -> None:
    args, expected = _inputs(name)
    loss = Loss(name, backend="torch")
    values = loss(*args)
    assert values.shape[0] == 6, "reduction='none' keeps the batch axis first"
    torch.testing.assert_close(values, expected, rtol=0, atol=0)
    mean = Loss(name.upper(), backend="torch", reduction="mean")(*args)
    torch.testing.assert_close(mean, expected.mean())


@pytest.mark.parametrize(
    ("variant", "cls"),
    [
        ("MSE", nn.MSELoss),
        ("MSELoss", nn.MSELoss),
        ("mse_loss", nn.MSELoss),
        ("MAE", nn.L1Loss),
        ("BCEWithLogits", nn.BCEWithLogitsLoss),
        ("Huber_Loss", nn.HuberLoss),
        ("CrossEntropyLoss", nn.CrossEntropyLoss),
        ("poisson_nll", nn.PoissonNLLLoss),  # not registered: found among torch.nn's own classes
        ("HingeEmbeddingLoss", nn.HingeEmbeddingLoss),
    ],
)
def test_loss_names_resolve_leniently(impl, variant: str, cls: type) -> None:
    assert impl.resolve_loss(variant) is cls


def test_unknown_loss_lists_the_names(impl) -> None:
    with pytest.raises(NotRegisteredError, match=r"(?s)nope.*bce_with_logits.*TripletMarginLoss"):
        impl.resolve_loss("nope")


def test_loss_classes_and_callables_infer_the_torch_backend() -> None:
    a, b = torch.randn(4, 2), torch.randn(4, 2)
    by_class = Loss(nn.SmoothL1Loss, loss_kwargs={"beta": 0.5})
    assert by_class.backend == "torch"
    torch.testing.assert_close(by_class(a, b), F.smooth_l1_loss(a, b, beta=0.5, reduction="none"))
    by_function = Loss(F.mse_loss)
    assert by_function.backend == "torch"
    torch.testing.assert_close(by_function(a, b), F.mse_loss(a, b, reduction="none"))


def test_loss_kwargs_that_do_not_fit_are_refused(impl) -> None:
    with pytest.raises(InvalidArgumentError, match="HuberLoss"):
        impl.build_loss(nn.HuberLoss, {"no_such_argument": 1}, "none")


# -- optimizers ----------------------------------------------------------------------------------------------
OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta,
    "adamax": torch.optim.Adamax,
    "nadam": torch.optim.NAdam,
    "radam": torch.optim.RAdam,
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizers_resolve_by_name(impl, name: str) -> None:
    cls = OPTIMIZERS[name]
    assert impl.resolve_optimizer(name) is cls
    assert impl.resolve_optimizer(name.upper()) is cls
    assert impl.resolve_optimizer(cls.__name__) is cls
    optimizer = impl.build_optimizer(cls, {"lr": 0.01}, [nn.Parameter(torch.zeros(2))])
    assert isinstance(optimizer, cls)


def test_unregistered_torch_optimizers_resolve_by_class_name(impl) -> None:
    assert impl.resolve_optimizer("LBFGS") is torch.optim.LBFGS
    assert impl.resolve_optimizer("sparse_adam") is torch.optim.SparseAdam


def test_optimizer_factory_and_argument_errors(impl) -> None:
    params = [nn.Parameter(torch.zeros(3))]
    optimizer = Optimizer(
        factory=lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.5), opt_kwargs={"lr": 0.1}, backend="torch"
    )
    optimizer.build(parameters=params)
    assert isinstance(optimizer.instance, torch.optim.SGD)
    assert optimizer.instance.param_groups[0]["momentum"] == 0.5
    with pytest.raises(InvalidArgumentError, match="parameters"):
        impl.build_optimizer(torch.optim.Adam, {}, [])
    with pytest.raises(InvalidArgumentError, match="Adam"):
        impl.build_optimizer(torch.optim.Adam, {"lr": -1.0}, params)
    with pytest.raises(InvalidArgumentError, match="Adam"):
        impl.build_optimizer(torch.optim.Adam, {"no_such_argument": 1}, params)


def _model_and_data(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.standard_normal((32, 3)).astype("float32"))
    return model, x, x.sum(dim=1, keepdim=True)


def _steps(impl, model: nn.Module, optimizer, x, y, n: int) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    for _ in range(n):
        with impl.gradient_scope() as scope:
            loss = impl.mean((model(x) - y) ** 2)
        impl.apply_gradients(loss, optimizer, params, scope)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("adam", {"lr": 1e-2}),
        ("adamw", {"lr": 1e-2, "amsgrad": True}),
        ("sgd", {"lr": 1e-2, "momentum": 0.9, "nesterov": True}),
        ("rmsprop", {"lr": 1e-3, "momentum": 0.5, "centered": True}),
        ("adagrad", {"lr": 1e-2}),
    ],
)
def test_optimizer_state_survives_a_file_and_training_continues_identically(impl, tmp_path, name, kwargs) -> None:
    model, x, y = _model_and_data()
    optimizer = Optimizer(name, opt_kwargs=kwargs, backend="torch")
    optimizer.build(parameters=list(model.parameters()))
    _steps(impl, model, optimizer.instance, x, y, 5)
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    path = optimizer.save(tmp_path / name)

    twin, _, _ = _model_and_data(seed=1)
    twin.load_state_dict(weights)
    restored = Optimizer.load(path)
    restored.build(parameters=list(twin.parameters()))

    _steps(impl, model, optimizer.instance, x, y, 5)
    _steps(impl, twin, restored.instance, x, y, 5)
    for (key, original), copy in zip(model.state_dict().items(), twin.state_dict().values(), strict=True):
        torch.testing.assert_close(copy, original, rtol=0, atol=0, msg=key)


def test_optimizer_state_holds_numpy_and_json_only(impl) -> None:
    model, x, y = _model_and_data()
    optimizer = impl.build_optimizer(torch.optim.Adam, {"lr": 1e-2, "betas": (0.8, 0.9)}, list(model.parameters()))
    _steps(impl, model, optimizer, x, y, 2)
    state = impl.get_optimizer_state(optimizer)
    assert set(state) == {"state", "param_groups"}
    assert set(state["state"]) == {"0", "1", "2", "3"}
    assert isinstance(state["state"]["0"]["exp_avg"], np.ndarray)
    assert state["param_groups"][0]["betas"] == (0.8, 0.9)
    twin = impl.build_optimizer(torch.optim.Adam, {"lr": 1.0}, list(model.parameters()))
    impl.set_optimizer_state(twin, state)
    assert twin.param_groups[0]["lr"] == 1e-2
    assert twin.param_groups[0]["betas"] == (0.8, 0.9)
    assert torch.is_tensor(twin.state[next(model.parameters())]["step"])


def test_optimizer_state_for_other_parameters_is_refused(impl) -> None:
    model, x, y = _model_and_data()
    optimizer = impl.build_optimizer(torch.optim.Adam, {}, list(model.parameters()))
    _steps(impl, model, optimizer, x, y, 1)
    state = impl.get_optimizer_state(optimizer)
    fewer = impl.build_optimizer(torch.optim.Adam, {}, [nn.Parameter(torch.zeros(8, 3))])
    with pytest.raises(InvalidArgumentError, match="another model"):
        impl.set_optimizer_state(fewer, state)
    other_shapes = [nn.Parameter(torch.zeros(p.shape[::-1])) for p in model.parameters()]
    wrong = impl.build_optimizer(torch.optim.Adam, {}, other_shapes)
    with pytest.raises(InvalidArgumentError, match="shape"):
        impl.set_optimizer_state(wrong, state)
    with pytest.raises(InvalidArgumentError):
        impl.set_optimizer_state(wrong, {"bad": 1})


def test_optimizer_step_uses_the_stored_gradients(impl) -> None:
    param = nn.Parameter(torch.ones(2))
    optimizer = impl.build_optimizer(torch.optim.SGD, {"lr": 0.5}, [param])
    param.grad = torch.tensor([1.0, -1.0])
    impl.optimizer_step(optimizer)
    torch.testing.assert_close(param.detach(), torch.tensor([0.5, 1.5]))


def test_classes_are_saved_by_name_and_restored(tmp_path) -> None:
    optimizer = Optimizer(torch.optim.AdamW, opt_kwargs={"lr": 0.01})
    assert optimizer.backend == "torch"
    restored = Optimizer.load(optimizer.save(tmp_path / "adamw"))
    restored.build(parameters=[nn.Parameter(torch.zeros(2))])
    assert isinstance(restored.instance, torch.optim.AdamW)
    assert restored.instance.param_groups[0]["lr"] == 0.01
    loss = Loss.load(Loss(nn.HuberLoss, loss_kwargs={"delta": 0.5}).save(tmp_path / "huber"))
    a, b = torch.randn(3, 2), torch.randn(3, 2)
    torch.testing.assert_close(loss(a, b), F.huber_loss(a, b, delta=0.5, reduction="none"))


ELEMENTWISE = {"mse", "mae", "l1", "huber", "smooth_l1", "bce", "bce_with_logits"}


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_fused_mean_is_the_mean_of_the_unreduced_values_and_only_for_elementwise_losses(name: str) -> None:
    args, unreduced = _inputs(name)
    fused = Loss(name, backend="torch")._fused_mean()
    assert (fused is not None) == (name in ELEMENTWISE)
    if fused is not None:
        torch.testing.assert_close(fused(*args), unreduced.mean())


def test_fused_mean_keeps_loss_arguments_and_steps_aside_for_an_explicit_reduction(impl) -> None:
    args, _ = _inputs("bce_with_logits")
    pos_weight = torch.tensor([1.0, 2.0, 3.0, 4.0])
    fused = Loss("bce_with_logits", backend="torch", loss_kwargs={"pos_weight": pos_weight})._fused_mean()
    assert fused is not None
    expected = F.binary_cross_entropy_with_logits(*args, pos_weight=pos_weight, reduction="none").mean()
    torch.testing.assert_close(fused(*args), expected)
    assert impl.build_mean_loss(nn.MSELoss, {"reduction": "sum"}) is None
    assert impl.build_mean_loss(nn.CrossEntropyLoss, {"weight": torch.ones(4)}) is None
    assert Loss("mse", backend="torch", reduction="sum")._fused_mean() is None
    assert Loss(lambda a, b: (a - b) ** 2, backend="torch")._fused_mean() is None  # a user's function: unknown


def test_applied_loss_values_for_plain_and_weighted_batches() -> None:
    import modularml as mml
    from modularml.batches import Batch, ExecutionContext, SampleData

    g = torch.Generator().manual_seed(1)
    outputs, targets = torch.randn(5, 2, generator=g), torch.randn(5, 2, generator=g)
    applied = mml.AppliedLoss(Loss("mse", backend="torch"), on="head", inputs=["outputs", "targets"], weight=2.0)
    data = {"default": SampleData(targets=targets, outputs=outputs)}

    ctx = ExecutionContext("step", outputs={"head": Batch(5, data)})
    torch.testing.assert_close(applied.compute(ctx), 2.0 * F.mse_loss(outputs, targets))

    weights = np.array([1.0, 0.5, 0.0, 2.0, 1.0], dtype=np.float32)
    ctx = ExecutionContext("step", outputs={"head": Batch(5, data, role_weights={"default": weights})})
    per_sample = F.mse_loss(outputs, targets, reduction="none").mean(dim=1)
    expected = 2.0 * (per_sample * torch.from_numpy(weights)).sum() / 5
    torch.testing.assert_close(applied.compute(ctx), expected)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("adam", {"lr": 1e-3}),
        ("adamw", {"lr": 1e-3, "weight_decay": 0.01}),
        ("sgd", {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
        ("rmsprop", {"lr": 1e-3, "momentum": 0.5}),
        ("adagrad", {"lr": 1e-2}),
        ("adamax", {"lr": 1e-3}),
        ("adadelta", {}),
        ("rprop", {}),
    ],
)
def test_cpu_optimizers_use_foreach_and_compute_what_the_per_parameter_loop_computes(impl, name, kwargs) -> None:
    def train(build) -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
        optimizer = build(list(model.parameters()))
        g = torch.Generator().manual_seed(1)
        for _ in range(30):
            x, y = torch.randn(32, 8, generator=g), torch.randn(32, 1, generator=g)
            loss = ((model(x) - y) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return [p.detach().clone() for p in model.parameters()]

    spec = impl.resolve_optimizer(name)
    built = impl.build_optimizer(spec, kwargs, [torch.zeros(2, requires_grad=True)])
    assert built.param_groups[0]["foreach"] is True
    ours = train(lambda params: impl.build_optimizer(spec, kwargs, params))
    torchs = train(lambda params: spec(params, **kwargs))  # torch's default on the CPU: the per-parameter loop
    for a, b in zip(ours, torchs, strict=True):
        assert torch.equal(a, b)


def test_foreach_is_left_to_the_user_and_to_torch_elsewhere(impl) -> None:
    param = [torch.zeros(2, requires_grad=True)]
    chosen = impl.build_optimizer(impl.resolve_optimizer("adam"), {"foreach": False}, param)
    assert chosen.param_groups[0]["foreach"] is False
    nadam = impl.build_optimizer(impl.resolve_optimizer("nadam"), {}, param)  # differs in the last bits: untouched
    assert nadam.param_groups[0]["foreach"] is None
