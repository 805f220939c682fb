"""``ModelNode``: one model (of any backend) inside a model graph, with its optimizer and freeze state."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modularml.backends.backend import Backend, get_backend
from modularml.backends.devices import Accelerator, as_accelerator
from modularml.batches import Batch, ExecutionContext, RoleData, SampleData
from modularml.batches.tensors import backend_format
from modularml.errors import (
    DeviceError,
    InvalidArgumentError,
    InvalidTypeError,
    ModelForwardError,
    ModularMLError,
    OptimizerNotSetError,
)
from modularml.models.base import BaseModel, normalize_shape
from modularml.nodes.graph_node import ComputeNode, convert_batch
from modularml.optimizers import Optimizer
from modularml.plugins.manager import get_plugin_manager

if TYPE_CHECKING:
    from modularml.losses.applied_loss import AppliedLoss

__all__ = ["ModelNode", "wrap_native_model"]


def wrap_native_model(model: Any) -> BaseModel:
    """``model`` if it is a BaseModel, else the BaseModel of the installed backend that claims it.

    Raises:
        TypeError: If no installed backend claims ``model``.
    """
    if isinstance(model, BaseModel):
        return model
    for info in get_plugin_manager().backends().values():
        if info.framework_module is not None and info.framework_module not in sys.modules:
            continue
        impl = info.load()
        claims = getattr(impl, "claims_model", None)
        if callable(claims) and claims(model):
            return impl.wrap_model(model)
    raise InvalidTypeError(
        f"ModelNode needs a BaseModel or a model object that an installed backend can wrap; no backend claims "
        f"{type(model).__name__}. Install the plugin of its framework (e.g. modularml-torch) or subclass BaseModel."
    )


class ModelNode(ComputeNode):
    """Single learnable or static stage inside a :class:`~modularml.ModelGraph`.

    ``forward`` maps only the ``features`` of each role; targets, tags and sample UUIDs pass
    through. The output batch holds the predictions as both ``outputs`` and ``features`` (so a
    downstream node reads them as its features).

    Attributes:
        _model (BaseModel): Wrapped backend model implementation.
        _optimizer (Optimizer | None): Optional optimizer coordinating gradient steps.
        _freeze (bool): Flag indicating whether training is disabled.
    """

    def __init__(
        self,
        label: str,
        model: BaseModel | Any,
        upstream_ref: Any,
        optimizer: Optimizer | None = None,
        *,
        accelerator: Accelerator | str | None = None,
        node_id: str | None = None,
        register: bool = True,
    ) -> None:
        """Initialize a ModelNode.

        Args:
            label (str): Unique name identifying this stage within the model graph.
            model (BaseModel | Any): A BaseModel, or a raw framework model that an installed
                backend claims (wrapped automatically).
            upstream_ref: The upstream FeatureSet (or view, or reference) or graph node.
            optimizer (Optimizer | None): Optimizer to use during stage-wise training.
            accelerator (Accelerator | str | None): Where this node runs (``"cuda:0"`` or an
                :class:`~modularml.Accelerator`); it wins over a phase's accelerator. Checked
                against the backend's devices when the model is placed (a phase's start, or the
                node's first step). None: the phase's, else wherever the model is.
            node_id (str, optional): Used only for de-serialization.
            register (bool, optional): Used only for de-serialization.

        Raises:
            TypeError: If the model cannot be wrapped or the optimizer is not an Optimizer.
            ValueError: If the optimizer's backend differs from the model's.
            DeviceError: If ``accelerator`` is a malformed device string.
        """
        self._accelerator = as_accelerator(accelerator)
        self._model = wrap_native_model(model)
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise InvalidTypeError(f"optimizer is a modularml Optimizer; got {type(optimizer).__name__}.")
        if optimizer is not None and optimizer.backend is not None and optimizer.backend != self._model.backend:
            raise InvalidArgumentError(
                f"ModelNode {label!r}: its model is a {str(self._model.backend)!r} model but its optimizer is for "
                f"{str(optimizer.backend)!r}."
            )
        self._optimizer = optimizer
        self._freeze = False
        self._params: list[Any] | None = None
        super().__init__(
            label, [upstream_ref] if upstream_ref is not None else None, node_id=node_id, register=register
        )

    # ------------------------------------------------------------------ properties
    @property
    def max_upstream_refs(self) -> int:
        """Always 1: a ModelNode has a single input."""
        return 1

    @property
    def model(self) -> BaseModel:
        """The wrapped backend model."""
        return self._model

    @property
    def optimizer(self) -> Optimizer | None:
        """The node's own optimizer, if any."""
        return self._optimizer

    @property
    def backend(self) -> Backend:
        """The backend of the wrapped model."""
        return self._model.backend

    @property
    def output_backend(self) -> str:
        """The backend of this node's outputs (its model's)."""
        return str(self._model.backend)

    @property
    def accelerator(self) -> Accelerator | None:
        """This node's own accelerator (it wins over a phase's), or None."""
        return self._accelerator

    @accelerator.setter
    def accelerator(self, value: Accelerator | str | None) -> None:
        self._accelerator = as_accelerator(value)
        self.__dict__.pop("_gather_format_cache", None)  # placed again at the next step

    @property
    def _gather_format(self) -> Any:
        """This node's backend format, on its model's device: BatchView inputs are gathered straight into it."""
        backend = self._model.backend
        cached = self.__dict__.get("_gather_format_cache")
        if cached is None or cached[0] is not backend:
            if self._accelerator is not None:
                self.place()  # a node's own accelerator applies outside phases too
                return self.__dict__["_gather_format_cache"][1]
            cached = (backend, backend_format(str(backend)))
            self.__dict__["_gather_format_cache"] = cached
        return cached[1]

    def needs_move(self, accelerator: Accelerator | None = None) -> bool:
        """Whether :meth:`place` with ``accelerator`` (a phase's) would move the model to another device."""
        chosen = self._accelerator if self._accelerator is not None else accelerator
        return chosen is not None and get_backend(self.backend).model_device(self._model) != chosen.device

    def place(self, accelerator: Accelerator | None = None) -> bool:
        """Put the model on the device of this node's accelerator, else of ``accelerator`` (a phase's).

        With neither, the model stays where it is. Batches of later steps are gathered onto the
        model's device (features, targets, weights and masks, once per step), pinned where the
        accelerator asks for it. A built optimizer's state moves with the model. Phases call
        this when they start.

        Args:
            accelerator: The phase's accelerator; this node's own wins over it.

        Returns:
            bool: Whether the model moved.

        Raises:
            DeviceError: If the device is not available to the node's backend (the message names
                the device, the available ones and what to do); the model is left where it was.
        """
        chosen = self._accelerator if self._accelerator is not None else accelerator
        impl = get_backend(self.backend)
        moved = False
        if chosen is not None and impl.model_device(self._model) != chosen.device:
            try:
                self._move_model(impl, chosen.device)
            except DeviceError as exc:
                whose = "its own accelerator" if chosen is self._accelerator else "the phase's accelerator"
                raise DeviceError(
                    f"ModelNode {self.label!r} ({str(self.backend)!r} backend) cannot run on {chosen.device!r}, "
                    f"{whose}: {exc} To keep only this node elsewhere, give it its own, e.g. "
                    "ModelNode(..., accelerator='cpu')."
                ) from exc
            moved = True
        device = impl.model_device(self._model)
        pin = chosen is not None and chosen.pins
        target = backend_format(str(self.backend), device=None if device == "cpu" else device, pin_memory=pin)
        self.__dict__["_gather_format_cache"] = (self._model.backend, target)
        return moved

    def _move_model(self, impl: Any, device: str) -> None:
        """Move the model to ``device``; a built optimizer is rebuilt over the moved parameters, its state kept."""
        optimizer = self._optimizer
        state = optimizer.get_state() if optimizer is not None and optimizer.is_built else None
        impl.place_model(self._model, device)
        if state is not None:
            optimizer.build(parameters=self.parameters(), backend=self.backend, force_rebuild=True)
            optimizer.set_state(state)

    @property
    def is_built(self) -> bool:
        """Whether the model has been built."""
        return self._model.is_built

    @property
    def is_frozen(self) -> bool:
        """Whether this stage is frozen (not trainable)."""
        return self._freeze

    @property
    def is_trainable(self) -> bool:
        """Whether the backend trains models by gradient steps."""
        return bool(getattr(get_backend(self.backend), "trainable", False))

    @property
    def is_fittable(self) -> bool:
        """Whether the wrapped model has a ``fit`` method (batch-fit models)."""
        return callable(getattr(self._model, "fit", None))

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """The model's per-sample input shape."""
        return self._model.input_shape

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        """The model's per-sample output shape."""
        return self._model.output_shape

    def freeze(self) -> None:
        """Disable training of this node."""
        self._freeze = True

    def unfreeze(self) -> None:
        """Enable training of this node."""
        self._freeze = False

    def parameters(self) -> list[Any]:
        """The model's trainable native parameters (empty for non-trainable backends or unbuilt models)."""
        if not self.is_built or not self.is_trainable:
            return []
        return list(get_backend(self.backend).model_parameters(self._model))

    # ------------------------------------------------------------------ building
    def build_model(
        self,
        input_shape: tuple[int, ...] | None = None,
        output_shape: tuple[int, ...] | None = None,
        *,
        force: bool = False,
    ) -> None:
        """Build the model with the given shapes, then its optimizer (over the model's parameters).

        Args:
            input_shape: Per-sample input shape. Defaults to None (the model's own).
            output_shape: Per-sample output shape; the model must know it otherwise.
            force: Rebuild an already built model.
        """
        if not self.is_built or force:
            self._model.build(
                normalize_shape(input_shape, what="input_shape"),
                normalize_shape(output_shape, what="output_shape"),
                force=force,
            )
        self.build_optimizer(force=force)

    def build_optimizer(self, *, force: bool = False) -> None:
        """Build the node's own optimizer over the model's parameters (no-op without one)."""
        if self._optimizer is None or not self.is_trainable or not self.is_built:
            return
        if self._optimizer.is_built and not force:
            return
        self._optimizer.build(parameters=self.parameters(), backend=self.backend, force_rebuild=True)

    def build(self, input_shapes: list[tuple[int, ...]], *, force: bool = False) -> tuple[int, ...] | None:
        """Build from the inferred per-sample input shapes (one); return the output shape."""
        self.build_model(input_shapes[0] if input_shapes else None, force=force)
        return self.output_shape

    # ------------------------------------------------------------------ forward
    def forward(self, x: Batch | RoleData | SampleData, **kwargs: Any) -> Batch | RoleData | SampleData:
        """Run the model on the features of ``x``; same type out as in.

        Numeric arrays are converted to the model's backend first; native tensors of the model's
        backend pass through untouched, so autograd links are kept.
        """
        return self.forward_single(x, **kwargs)

    def forward_single(self, x: Batch | RoleData | SampleData, **kwargs: Any) -> Batch | RoleData | SampleData:
        """Performs a forward pass through the model; the output type matches the input."""
        if isinstance(x, Batch):
            # Converted once (free when gathered in this backend), then each role straight to the model.
            converted = x.convert(self._gather_format)
            out = {role: self._forward_data(data, kwargs) for role, data in converted.role_data.items()}
            return converted.with_outputs(RoleData.trusted(out))
        if isinstance(x, RoleData):
            return x.map(lambda data: self.forward_single(data, **kwargs))
        if not isinstance(x, SampleData):
            raise InvalidTypeError(f"ModelNode.forward takes a Batch, RoleData or SampleData; got {type(x).__name__}.")
        return self._forward_data(x.to_backend(self.backend), kwargs)

    def _forward_data(self, data: SampleData, kwargs: dict[str, Any]) -> SampleData:
        """Forward the features of ``data`` (already in this node's backend); outputs become the next features."""
        if data.features is None:
            raise InvalidArgumentError(f"ModelNode {self.label!r} got a batch without features.")
        if isinstance(data.features, dict):
            raise InvalidArgumentError(
                f"ModelNode {self.label!r} needs features as one array; got columns {sorted(data.features)}. "
                "Materialize with fmt='numpy' (columns are stacked on axis 1)."
            )
        if not self._model.is_built:
            shape = tuple(int(d) for d in tuple(data.features.shape)[1:])
            self.build_model(shape)
        try:
            out = self._model.forward(data.features, **kwargs)
        except ModularMLError:
            raise
        except Exception as exc:
            raise self._forward_error(data.features, exc) from exc
        # The outputs also become the features the next node reads.
        return SampleData(
            features=out, targets=data.targets, tags=data.tags, sample_uuids=data.sample_uuids, outputs=out
        )

    def _forward_error(self, features: Any, exc: Exception) -> ModelForwardError:
        """The error for a model that failed on ``features``: the node, the model and the shapes."""
        shape = tuple(int(d) for d in tuple(getattr(features, "shape", ())))
        model = getattr(self._model, "model", None) or self._model
        built = self._model.input_shape
        expected = f" It was built for per-sample input {built}." if built is not None and built != shape[1:] else ""
        return ModelForwardError(
            f"ModelNode {self.label!r} ({type(model).__name__}, backend {str(self.backend)!r}) failed on a batch of "
            f"shape {shape} (per sample {shape[1:]}): {type(exc).__name__}: {exc}.{expected} Make the model accept "
            f"per-sample inputs of shape {shape[1:]} (a FeatureSet's feature columns are stacked on axis 1), or "
            "give the node a model that infers its shapes (SequentialMLP flattens them)."
        )

    def _forward_gathered(self, inputs: list[tuple[Batch, str | None]]) -> Batch:
        if len(inputs) != 1:
            raise InvalidArgumentError(f"ModelNode {self.label!r} has {len(inputs)} inputs; it takes exactly one.")
        batch, source = inputs[0]
        if source is not None and source != self.output_backend:  # a backend boundary: detach, then convert
            batch = convert_batch(batch, self.output_backend, cross=True)
        return self.forward(batch)  # converts to this backend (free when already gathered in it)

    # ------------------------------------------------------------------ steps
    def _losses_on_self(self, losses: list[AppliedLoss] | None) -> list[AppliedLoss]:
        keys = (self.node_id, self.label)
        return [loss for loss in losses or () if loss.node_id in keys]

    def train_step(self, ctx: ExecutionContext, losses: list[AppliedLoss]) -> None:
        """Forward, loss, backward and optimizer step for this stage; outputs and losses go to ``ctx``.

        Inputs from upstream nodes are detached: a stage trains only on its own losses.

        Raises:
            RuntimeError: If the stage is frozen, has no optimizer, or no loss applies to it.
        """
        if self._freeze:
            raise OptimizerNotSetError(f"ModelNode {self.label!r} is frozen; unfreeze it to train it.")
        if self._optimizer is None:
            raise OptimizerNotSetError(
                f"ModelNode {self.label!r} has no optimizer; give it one, or train the graph with a global optimizer."
            )
        mine = self._losses_on_self(losses)
        if not mine:
            raise OptimizerNotSetError(f"No loss is applied to ModelNode {self.label!r}; nothing to train on.")
        impl = get_backend(self.backend)
        inputs = self.gather_inputs(ctx, detach=True)
        if not self._optimizer.is_built:
            if not self.is_built:
                batch = inputs[0][0]
                self.build_model(tuple(batch.role_data[batch.roles[0]].shapes["features"]))
            self.build_optimizer()
        compile_step = getattr(impl, "compile_train_step", None)
        if callable(compile_step) and self._train_compiled(ctx, inputs, mine, compile_step):
            return
        with impl.gradient_scope() as scope:
            out = self._forward_gathered(inputs)
            ctx.set_output(self.node_id, out)
            total = None
            for loss in mine:
                value = loss.compute(ctx)
                ctx.add_loss(loss.label, value)
                total = value if total is None else total + value
        impl.apply_gradients(total, self._optimizer.instance, self._optimizer.parameters, scope)

    def plain_native_input(
        self, ctx: ExecutionContext, inputs: list[tuple[Batch, str | None]] | None = None
    ) -> Batch | None:
        """This node's input batch in its backend's tensors, if it is plain; else None.

        Plain: one input, every weight 1 and nothing masked, features (and targets, where there are
        any) native tensors of this backend. What a compiled step (``compile_train_step``) takes.

        Args:
            ctx: The step's context.
            inputs: What :meth:`gather_inputs` returned for ``ctx`` already, if the caller has it.
        """
        if inputs is None:
            inputs = self.gather_inputs(ctx, detach=True)
        if len(inputs) != 1:
            return None
        batch, source = inputs[0]
        if source is not None and source != self.output_backend:
            batch = convert_batch(batch, self.output_backend, cross=True)
        if not isinstance(batch, Batch) or not batch.uniform_weights:
            return None
        batch = batch.convert(self._gather_format)
        impl = get_backend(self.backend)
        for role in batch.roles:
            data = batch.role_data[role]
            if not impl.is_native(data.features) or not (data.targets is None or impl.is_native(data.targets)):
                return None
        return batch

    @staticmethod
    def plain_tensors(batch: Batch) -> tuple[list[Any], tuple[bool, ...]]:
        """The features and targets of every role of a plain batch, in order, and which roles have targets."""
        tensors: list[Any] = []
        has_targets = []
        for role in batch.roles:
            data = batch.role_data[role]
            tensors.append(data.features)
            has_targets.append(data.targets is not None)
            if data.targets is not None:
                tensors.append(data.targets)
        return tensors, tuple(has_targets)

    @staticmethod
    def plain_batch(batch_size: int, roles: tuple[str, ...], has_targets: tuple[bool, ...], values: Any) -> Batch:
        """A uniform batch of the features and targets taken in order from the iterator ``values``."""
        data = {}
        for role, targeted in zip(roles, has_targets, strict=True):
            features = next(values)
            data[role] = SampleData(features=features, targets=next(values) if targeted else None)
        return Batch.trusted(batch_size, RoleData.trusted(data), None, None, True)

    def output_batch(self, batch: Batch, outputs: Mapping[str, Any]) -> Batch:
        """``batch`` (this node's input) with the model's outputs of each role as its outputs and next features."""
        results = {}
        for role in batch.roles:
            data, y = batch.role_data[role], outputs[role]
            results[role] = SampleData(
                features=y, targets=data.targets, tags=data.tags, sample_uuids=data.sample_uuids, outputs=y
            )
        return batch.with_outputs(RoleData.trusted(results))

    def _train_compiled(
        self,
        ctx: ExecutionContext,
        inputs: list[tuple[Batch, str | None]],
        losses: list[AppliedLoss],
        compile_step: Any,
    ) -> bool:
        """:meth:`train_step` as one compiled function of the batch's tensors, for a backend that compiles steps.

        A backend's optional ``compile_train_step(key, step, optimizer, parameters)`` returns a
        callable of native tensors that runs ``step`` (forward and losses, returning the total loss,
        the loss values and the outputs), takes the gradients of the total for ``parameters`` and
        steps ``optimizer``, compiled once per ``key`` (and input signature). ``key`` holds every
        Python-level fact the step depends on: this node, its losses, the roles and which carry
        targets, the batch size and the model's training mode. Only plain batches
        (:meth:`plain_native_input`) and losses that read the node's own outputs and targets
        qualify; anything else trains through :meth:`train_step`'s scope, as before.

        Returns:
            bool: Whether the step ran (outputs and losses are then in ``ctx``).
        """
        if any(loss.reads_columns or not loss.computes_in(self.output_backend) for loss in losses):
            return False
        batch = self.plain_native_input(ctx, inputs)
        if batch is None:
            return False
        tensors, has_targets = self.plain_tensors(batch)
        roles, n, model, node_id, applied = (
            tuple(batch.roles),
            batch.batch_size,
            self._model,
            self.node_id,
            tuple(losses),
        )
        key = (node_id, tuple(id(loss) for loss in applied), roles, has_targets, n, getattr(model, "training", None))

        def step(*flat: Any) -> tuple[Any, tuple[Any, ...], tuple[Any, ...]]:
            inputs = self.plain_batch(n, roles, has_targets, iter(flat))
            outputs = {role: model.forward(inputs.role_data[role].features) for role in roles}
            scratch = ExecutionContext.trusted("train", 0, 0, {})
            scratch.set_output(node_id, self.output_batch(inputs, outputs))
            loss_values = tuple(loss.compute(scratch) for loss in applied)
            total = loss_values[0]
            for value in loss_values[1:]:
                total = total + value
            return total, loss_values, tuple(outputs[role] for role in roles)

        run = compile_step(key, step, self._optimizer.instance, self._optimizer.parameters)
        _, loss_values, outputs = run(*tensors)
        ctx.set_output(self.node_id, self.output_batch(batch, dict(zip(roles, outputs, strict=True))))
        for loss, value in zip(applied, loss_values, strict=True):
            ctx.add_loss(loss.label, value)
        return True

    def eval_step(self, ctx: ExecutionContext, losses: list[AppliedLoss] | None = None) -> None:
        """Forward pass and loss computation under no-grad; outputs and losses go to ``ctx``.

        Decision: unlike the older design, this works whether or not the node is frozen (phases
        never change the user's freeze state).
        """
        impl = get_backend(self.backend)
        with impl.no_grad():
            self.forward_from_context(ctx)
            for loss in self._losses_on_self(losses):
                ctx.add_loss(loss.label, loss.compute(ctx))

    def fit_step(self, ctx: ExecutionContext, losses: list[AppliedLoss] | None = None) -> None:
        """Fit the wrapped model on the complete data in ``ctx``, then forward (and compute losses for metrics).

        Calls ``fit(X, y)`` on the wrapped model (not on the node), with the default role's features
        and targets as numpy arrays.

        Raises:
            RuntimeError: If the node is frozen or its model has no ``fit``.
        """
        if self._freeze:
            raise OptimizerNotSetError(f"ModelNode {self.label!r} is frozen; unfreeze it to fit it.")
        if not self.is_fittable:
            raise OptimizerNotSetError(
                f"The model of ModelNode {self.label!r} ({type(self._model).__name__}) has no fit(); train it instead."
            )
        inputs = self.gather_inputs(ctx, detach=True)
        batch, _ = inputs[0]
        data = batch.to_format("numpy").role_data[batch.roles[0]]
        self._model.fit(data.features, data.targets)
        self.eval_step(ctx, losses)

    # ------------------------------------------------------------------ config and state
    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this node (model and optimizer configs; no learned state)."""
        return {
            **self._base_config(),
            "model": self._model.get_config(),
            "optimizer": None if self._optimizer is None else self._optimizer.get_config(),
            "accelerator": None if self._accelerator is None else self._accelerator.get_config(),
        }

    @classmethod
    def from_config(
        cls, config: dict[str, Any], *, register: bool = True, allow_packaged_code: bool = False
    ) -> ModelNode:
        """Reconstruct a ModelNode from :meth:`get_config` output (no learned state)."""
        from modularml.nodes.references import ref_from_config

        model = BaseModel.from_config(config["model"], allow_packaged_code=allow_packaged_code)
        opt_cfg = config.get("optimizer")
        optimizer = None if opt_cfg is None else Optimizer.from_config(opt_cfg, allow_packaged_code=allow_packaged_code)
        refs = [ref_from_config(r) for r in config.get("upstream_refs", [])]
        return cls(
            config["label"],
            model,
            refs[0] if refs else None,
            optimizer,
            accelerator=as_accelerator(config.get("accelerator")),
            node_id=config.get("node_id"),
            register=register,
        )

    def get_state(self) -> dict[str, Any]:
        """Freeze flag, model state and optimizer state."""
        return {
            "frozen": self._freeze,
            "model": self._model.get_state(),
            "optimizer": None if self._optimizer is None else self._optimizer.get_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` output (the optimizer's state is restored when it is built).

        All or nothing: when the model's or the optimizer's part fails, the node is put back as it was.

        Raises:
            InvalidArgumentError: If ``state`` is not one :meth:`get_state` produced.
        """
        if not isinstance(state, Mapping) or not isinstance(state.get("model"), Mapping):
            raise InvalidArgumentError(
                f"A ModelNode state is the dict returned by get_state(), with 'model'; got {state!r:.200}."
            )
        before = self.get_state() if self._model.is_built else None
        try:
            self._model.set_state(state["model"])
            if self._optimizer is not None and state.get("optimizer") is not None:
                self._optimizer.set_state(state["optimizer"])
        except BaseException:
            if before is not None:
                self._model.set_state(before["model"])
                if self._optimizer is not None and before["optimizer"] is not None:
                    self._optimizer.set_state(before["optimizer"])
            raise
        self._freeze = bool(state.get("frozen", False))

    def __repr__(self) -> str:
        placed = "" if self._accelerator is None else f", accelerator={self._accelerator!r}"
        return f"ModelNode(label={self.label!r}, model={self._model!r}, frozen={self._freeze}{placed})"
