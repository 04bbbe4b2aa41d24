"""A corpus of small real architectures, healthy and broken, for the stability tests.

Every builder is a plain function ``build_<name>(variant="healthy", seed=0) -> Case``. A
:class:`Case` is a named tuple ``(model, inputs, targets, loss, optimizer, name, variant)`` that
unpacks like a tuple:

* ``model``: the module, in training mode, initialized from ``seed`` (the global RNG is left as
  it was);
* ``inputs``: a tensor (``model(x)``) or a dict of tensors (``model(**inputs)``, the Hugging
  Face convention); :func:`call` runs either;
* ``targets``, ``loss``: ``loss(model_output, targets)`` is the scalar training loss;
* ``optimizer``: ``optimizer(params)`` builds the optimizer this architecture is usually trained
  with (AdamW at 3e-4 for transformers, Adam for recurrent nets, SGD with momentum for CNNs).

Models are tiny (hidden 32-64, 2-4 layers, sequences of 16 tokens over a vocabulary of 100,
32x32 images) so that every test on them runs in well under a second. Transformers come from
``transformers`` configs (``*Config(...)`` + ``*Model(config)``): nothing is downloaded.

The broken variants are the classic failures: ``"huge_init"`` (weights drawn with a standard
deviation far above the architecture's), ``"no_norm"`` (normalization layers removed at depth),
``"no_bn"`` / ``"no_bn_default"`` (a VGG without BatchNorm at PyTorch's default init, whose
signal shrinks ~6x in second moment per ReLU layer), ``"no_residual"`` and ``"unscaled"`` (a
ResNet with its residual branches unnormalized), and ``"sigmoid"`` (a deep sigmoid stack).
:data:`CORPUS` lists every ``(builder, variant, expected)`` triple, where ``expected`` names
what the probe should read (``"healthy"``, ``"vanishing"`` or ``"exploding"``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "CORPUS",
    "Case",
    "build",
    "build_bert",
    "build_gpt2",
    "build_gru",
    "build_llama",
    "build_lstm_lm",
    "build_mlp_sigmoid",
    "build_resnet",
    "build_transformer_postln",
    "build_transformer_preln",
    "build_vgg",
    "build_vit",
    "call",
    "main_output",
    "train_steps",
]

VOCAB = 100
SEQ = 16
BATCH = 8
IMAGE = 32
CLASSES = 10


class Case(NamedTuple):
    """One corpus model with a batch and its usual training recipe."""

    model: nn.Module
    inputs: Any
    targets: torch.Tensor
    loss: Callable[[Any, torch.Tensor], torch.Tensor]
    optimizer: Callable[[Any], torch.optim.Optimizer]
    name: str
    variant: str


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[torch.Generator]:
    """Run with the global RNG seeded (for libraries that draw from it), restored afterwards;
    yields a generator seeded alike for the data."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield torch.Generator().manual_seed(seed + 1)


def _check_variant(variant: str, allowed: tuple[str, ...], name: str) -> None:
    if variant not in allowed:
        raise ValueError(f"{name}: variant {variant!r} is unknown; choose one of {allowed}")


def main_output(out: Any) -> torch.Tensor:
    """The main tensor of a model's output: ``logits`` or ``last_hidden_state`` of a Hugging
    Face ``ModelOutput``, the first element of a tuple, or the tensor itself."""
    if isinstance(out, torch.Tensor):
        return out
    for key in ("logits", "last_hidden_state"):
        value = getattr(out, key, None)
        if isinstance(value, torch.Tensor):
            return value
    if isinstance(out, tuple | list) and out:
        return main_output(out[0])
    raise TypeError(f"no tensor in an output of type {type(out).__name__}")


def call(model: nn.Module, inputs: Any) -> Any:
    """``model(**inputs)`` for a dict, ``model(*inputs)`` for a tuple, else ``model(inputs)``."""
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, tuple):
        return model(*inputs)
    return model(inputs)


def train_steps(
    case: Case,
    steps: int,
    *,
    step_hook: Callable[[torch.Tensor], Any] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> list[float]:
    """``steps`` optimizer steps of ``case`` on its own batch; the losses. ``step_hook`` (e.g.
    a monitor's ``step``) runs with the loss after each ``optimizer.step()``; ``optimizer``
    (default: ``case.optimizer`` over the model's parameters) makes the steps."""
    opt = case.optimizer(case.model.parameters()) if optimizer is None else optimizer
    losses = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = case.loss(call(case.model, case.inputs), case.targets)
        loss.backward()
        opt.step()
        if step_hook is not None:
            step_hook(loss)
        losses.append(float(loss.detach()))
    return losses


def _ce(out: Any, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the main output (tokens flattened for sequence outputs)."""
    logits = main_output(out)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def _adamw(lr: float = 3e-4) -> Callable[[Any], torch.optim.Optimizer]:
    return lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=0.01)


def _adam(lr: float = 1e-3) -> Callable[[Any], torch.optim.Optimizer]:
    return lambda params: torch.optim.Adam(params, lr=lr)


def _sgd(lr: float = 0.01) -> Callable[[Any], torch.optim.Optimizer]:
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=0.9)


def _tokens(gen: torch.Generator, batch: int = BATCH) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, SEQ), generator=gen)


def _images(gen: torch.Generator, batch: int = BATCH) -> torch.Tensor:
    """Smooth random images (4x4 noise upsampled, plus a little pixel noise): white-noise
    images all look alike once pooled, which real images do not."""
    coarse = torch.randn(batch, 3, 4, 4, generator=gen)
    smooth = F.interpolate(coarse, size=(IMAGE, IMAGE), mode="bilinear", align_corners=False)
    return smooth + 0.1 * torch.randn(batch, 3, IMAGE, IMAGE, generator=gen)


def _labels(gen: torch.Generator, batch: int = BATCH) -> torch.Tensor:
    return torch.randint(0, CLASSES, (batch,), generator=gen)


def _renormal_(model: nn.Module, std: float) -> None:
    """Redraw every weight matrix (2-D or more) from N(0, std^2)."""
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, std)


def _lm_shift(out: Any, ids: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy of a causal LM's logits against its own input ids."""
    logits = main_output(out)[:, :-1]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


# --------------------------------------------------------------------- Hugging Face transformers


def build_bert(variant: str = "healthy", seed: int = 0) -> Case:
    """BERT for sequence classification from ``BertConfig`` (hidden 32, 2 post-LN layers, 2
    heads; N(0, 0.02) init), inputs ``{"input_ids", "attention_mask"}``, AdamW 3e-4.
    ``"huge_init"``: every weight matrix drawn from N(0, 1)."""
    _check_variant(variant, ("healthy", "huge_init"), "build_bert")
    from transformers import BertConfig, BertForSequenceClassification

    with _seeded(seed) as gen:
        config = BertConfig(
            vocab_size=VOCAB,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=SEQ * 2,
            num_labels=CLASSES,
        )
        model = BertForSequenceClassification(config)
        if variant == "huge_init":
            _renormal_(model, 1.0)
        ids = _tokens(gen)
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        targets = _labels(gen)
    model.train()
    return Case(model, inputs, targets, _ce, _adamw(), "bert", variant)


def build_gpt2(variant: str = "healthy", seed: int = 0) -> Case:
    """GPT-2 language model from ``GPT2Config`` (hidden 32, 2 pre-LN blocks with a final
    ``ln_f``, weights in HF ``Conv1D`` layers stored (in, out); N(0, 0.02) init), inputs
    ``{"input_ids", "attention_mask"}``, next-token loss, AdamW 3e-4. ``"huge_init"``: every
    weight matrix drawn from N(0, 1)."""
    _check_variant(variant, ("healthy", "huge_init"), "build_gpt2")
    from transformers import GPT2Config, GPT2LMHeadModel

    with _seeded(seed) as gen:
        # bos/eos inside the tiny vocabulary (GPT-2's 50256 is not; transformers warns)
        config = GPT2Config(vocab_size=VOCAB, n_positions=SEQ * 2, n_embd=32, n_layer=2, n_head=2,
                            bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1)  # fmt: skip
        model = GPT2LMHeadModel(config)
        if variant == "huge_init":
            _renormal_(model, 1.0)
        ids = _tokens(gen)
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    model.train()
    return Case(model, inputs, ids, _lm_shift, _adamw(), "gpt2", variant)


def build_vit(variant: str = "healthy", seed: int = 0) -> Case:
    """ViT image classifier from ``ViTConfig`` (32x32 images, 8x8 patches, hidden 32, 2 pre-LN
    blocks; truncated-normal 0.02 init), a tensor of pixels as input, AdamW 3e-4.
    ``"huge_init"``: every weight matrix drawn from N(0, 1)."""
    _check_variant(variant, ("healthy", "huge_init"), "build_vit")
    from transformers import ViTConfig, ViTForImageClassification

    with _seeded(seed) as gen:
        config = ViTConfig(
            image_size=IMAGE,
            patch_size=8,
            num_channels=3,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            num_labels=CLASSES,
        )
        model = ViTForImageClassification(config)
        if variant == "huge_init":
            _renormal_(model, 1.0)
        x = _images(gen)
        targets = _labels(gen)
    model.train()
    return Case(model, x, targets, _ce, _adamw(), "vit", variant)


def build_llama(variant: str = "healthy", seed: int = 0) -> Case:
    """Llama causal LM from ``LlamaConfig`` (hidden 32, 2 pre-RMSNorm blocks, SwiGLU MLP,
    rotary positions; N(0, 0.02) init), inputs ``{"input_ids", "attention_mask"}``, AdamW 3e-4.
    ``"huge_init"``: every weight matrix drawn from N(0, 1)."""
    _check_variant(variant, ("healthy", "huge_init"), "build_llama")
    from transformers import LlamaConfig, LlamaForCausalLM

    with _seeded(seed) as gen:
        config = LlamaConfig(
            vocab_size=VOCAB,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=SEQ * 2,
        )
        model = LlamaForCausalLM(config)
        if variant == "huge_init":
            _renormal_(model, 1.0)
        ids = _tokens(gen)
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    model.train()
    return Case(model, inputs, ids, _lm_shift, _adamw(), "llama", variant)


# ------------------------------------------------------------------------- torch transformers


class _Encoder(nn.Module):
    """Token embedding + ``nn.TransformerEncoder`` + a classifier over the mean token."""

    def __init__(self, encoder: nn.TransformerEncoder, width: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, width)
        self.encoder = encoder
        self.head = nn.Linear(width, CLASSES)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(ids)).mean(dim=1))


def _transformer(norm_first: bool, variant: str, seed: int, name: str) -> Case:
    _check_variant(variant, ("healthy", "huge_init", "no_norm"), name)
    width, depth = 32, 4
    with _seeded(seed) as gen:
        layer = nn.TransformerEncoderLayer(
            width, nhead=2, dim_feedforward=64, batch_first=True, norm_first=norm_first
        )
        final = nn.LayerNorm(width) if norm_first else None
        encoder = nn.TransformerEncoder(
            layer, num_layers=depth, norm=final, enable_nested_tensor=False
        )
        model = _Encoder(encoder, width)
        if variant == "huge_init":
            _renormal_(model.encoder, 1.0)
        elif variant == "no_norm":
            for block in model.encoder.layers:
                block.norm1 = nn.Identity()
                block.norm2 = nn.Identity()
            model.encoder.norm = None
            with torch.no_grad():  # a plain residual stream of Xavier blocks grows with depth
                for p in model.encoder.parameters():
                    if p.dim() >= 2:
                        p.mul_(4.0)
        ids = _tokens(gen)
        targets = _labels(gen)
    model.train()
    return Case(model, ids, targets, _ce, _adamw(), name, variant)


def build_transformer_postln(variant: str = "healthy", seed: int = 0) -> Case:
    """A post-LN ``nn.TransformerEncoder`` (4 layers, width 32) between an embedding and a
    linear classifier; token ids as input; AdamW 3e-4. ``"huge_init"``: encoder weights from
    N(0, 1); ``"no_norm"``: the LayerNorms removed and the weights scaled x4 (a residual stream
    without normalization)."""
    return _transformer(False, variant, seed, "transformer_postln")


def build_transformer_preln(variant: str = "healthy", seed: int = 0) -> Case:
    """A pre-LN ``nn.TransformerEncoder`` (``norm_first=True``, 4 layers, width 32, a final
    LayerNorm) between an embedding and a linear classifier; AdamW 3e-4. Variants as
    :func:`build_transformer_postln`."""
    return _transformer(True, variant, seed, "transformer_preln")


# ------------------------------------------------------------------------------- recurrent


class _LSTMLM(nn.Module):
    """Embedding, a 2-layer LSTM, a linear decoder over the vocabulary."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, width)
        self.lstm = nn.LSTM(width, width, num_layers=2, batch_first=True)
        self.decoder = nn.Linear(width, VOCAB)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embed(ids))
        return self.decoder(out)


def build_lstm_lm(variant: str = "healthy", seed: int = 0) -> Case:
    """An LSTM language model (embedding 32, 2-layer LSTM of 32 units, decoder to 100 tokens)
    at PyTorch's defaults; next-token loss; Adam 1e-3. ``"huge_init"``: every weight matrix
    from N(0, 1) (saturated gates)."""
    _check_variant(variant, ("healthy", "huge_init"), "build_lstm_lm")
    with _seeded(seed) as gen:
        model = _LSTMLM(32)
        if variant == "huge_init":
            _renormal_(model.lstm, 1.0)
        ids = _tokens(gen)
    model.train()
    return Case(model, ids, ids, _lm_shift, _adam(), "lstm_lm", variant)


class _GRUClassifier(nn.Module):
    """A 2-layer GRU over a sequence of feature vectors; a linear head on the last state."""

    def __init__(self, features: int, width: int) -> None:
        super().__init__()
        self.gru = nn.GRU(features, width, num_layers=2, batch_first=True)
        self.head = nn.Linear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return self.head(out[:, -1])


def build_gru(variant: str = "healthy", seed: int = 0) -> Case:
    """A GRU sequence classifier (16 features, 2 layers of 32 units) at PyTorch's defaults;
    float sequences as input; Adam 1e-3. ``"huge_init"``: GRU weights from N(0, 1)."""
    _check_variant(variant, ("healthy", "huge_init"), "build_gru")
    with _seeded(seed) as gen:
        model = _GRUClassifier(16, 32)
        if variant == "huge_init":
            _renormal_(model.gru, 1.0)
        x = torch.randn(BATCH, SEQ, 16, generator=gen)
        targets = _labels(gen)
    model.train()
    return Case(model, x, targets, _ce, _adam(), "gru", variant)


# ------------------------------------------------------------------------------------- CNNs


def _vgg_features(widths: list[int], batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    c = 3
    for i, w in enumerate(widths):
        layers.append(nn.Conv2d(c, w, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(w))
        layers.append(nn.ReLU())
        if i % 2 == 1:
            layers.append(nn.MaxPool2d(2))
        c = w
    return nn.Sequential(*layers)


def build_vgg(variant: str = "healthy", seed: int = 0) -> Case:
    """A VGG-style CNN: 8 3x3 convolutions (16-32 channels, a max-pool every 2), then a linear
    classifier, on 32x32 images; SGD 0.01 with momentum 0.9. ``"healthy"``: BatchNorm after
    every convolution (PyTorch's default init); ``"no_bn"``: no BatchNorm, He (Kaiming normal,
    fan-in) init, also healthy; ``"no_bn_default"``: no BatchNorm at PyTorch's default init,
    whose second moment shrinks ~6x per ReLU layer (vanishing)."""
    _check_variant(variant, ("healthy", "no_bn", "no_bn_default"), "build_vgg")
    widths = [16, 16, 32, 32, 32, 32, 32, 32]
    with _seeded(seed) as gen:
        features = _vgg_features(widths, batch_norm=variant == "healthy")
        model = nn.Sequential(features, nn.Flatten(), nn.Linear(32 * 2 * 2, CLASSES))
        if variant == "no_bn":
            for m in model.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    nn.init.zeros_(m.bias)  # type: ignore[arg-type]
        x = _images(gen)
        targets = _labels(gen)
    model.train()
    return Case(model, x, targets, _ce, _sgd(), "vgg", variant)


class _Block(nn.Module):
    """A basic residual block ``relu(x + bn2(conv2(relu(bn1(conv1(x))))))``."""

    def __init__(self, width: int, norm: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=not norm)
        self.bn1: nn.Module = nn.BatchNorm2d(width) if norm else nn.Identity()
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=not norm)
        self.bn2: nn.Module = nn.BatchNorm2d(width) if norm else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.bn1(self.conv1(x)))
        return self.relu(x + self.bn2(self.conv2(h)))


class _ResNet(nn.Module):
    def __init__(self, width: int, blocks: int, norm: bool) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1, bias=not norm)
        self.bn: nn.Module = nn.BatchNorm2d(width) if norm else nn.Identity()
        self.relu = nn.ReLU()
        self.blocks = nn.Sequential(*(_Block(width, norm) for _ in range(blocks)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.relu(self.bn(self.stem(x))))
        return self.fc(self.pool(h).flatten(1))


def build_resnet(variant: str = "healthy", seed: int = 0) -> Case:
    """A small ResNet (stem + basic blocks of 16 channels, BatchNorm, He init as torchvision),
    on 32x32 images; SGD 0.01 with momentum 0.9. ``"healthy"``: 4 blocks; ``"no_norm"``: 20
    blocks without BatchNorm, He init: each unnormalized residual branch adds as much variance
    as the stream holds, doubling it per block (exploding)."""
    _check_variant(variant, ("healthy", "no_norm"), "build_resnet")
    norm = variant == "healthy"
    with _seeded(seed) as gen:
        model = _ResNet(16, 4 if norm else 20, norm)
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        x = _images(gen)
        targets = _labels(gen)
    model.train()
    return Case(model, x, targets, _ce, _sgd(), "resnet", variant)


# ----------------------------------------------------------------------------------- MLPs


def build_mlp_sigmoid(variant: str = "sigmoid", seed: int = 0) -> Case:
    """A 10-layer MLP of width 64 on 32 features: ``"sigmoid"`` (Xavier-normal weights under
    sigmoids: the gradient shrinks ~x0.25 per layer, vanishing) or ``"healthy"`` (ReLU with
    He init); Adam 1e-3."""
    _check_variant(variant, ("healthy", "sigmoid"), "build_mlp_sigmoid")
    with _seeded(seed) as gen:
        layers: list[nn.Module] = []
        width = 32
        for _ in range(10):
            lin = nn.Linear(width, 64)
            if variant == "sigmoid":
                nn.init.xavier_normal_(lin.weight)
            else:
                nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
            nn.init.zeros_(lin.bias)
            layers += [lin, nn.Sigmoid() if variant == "sigmoid" else nn.ReLU()]
            width = 64
        layers.append(nn.Linear(64, CLASSES))
        model = nn.Sequential(*layers)
        x = torch.randn(32, 32, generator=gen)
        targets = torch.randint(0, CLASSES, (32,), generator=gen)
    model.train()
    return Case(model, x, targets, _ce, _adam(), "mlp_sigmoid", variant)


BUILDERS: dict[str, Callable[..., Case]] = {
    "bert": build_bert,
    "gpt2": build_gpt2,
    "vit": build_vit,
    "llama": build_llama,
    "transformer_postln": build_transformer_postln,
    "transformer_preln": build_transformer_preln,
    "lstm_lm": build_lstm_lm,
    "gru": build_gru,
    "vgg": build_vgg,
    "resnet": build_resnet,
    "mlp_sigmoid": build_mlp_sigmoid,
}

# (family, variant, what the probe should read)
CORPUS: list[tuple[str, str, str]] = [
    ("bert", "healthy", "healthy"),
    ("bert", "huge_init", "broken"),
    ("gpt2", "healthy", "healthy"),
    ("gpt2", "huge_init", "broken"),
    ("vit", "healthy", "healthy"),
    ("vit", "huge_init", "broken"),
    ("llama", "healthy", "healthy"),
    ("llama", "huge_init", "broken"),
    ("transformer_postln", "healthy", "healthy"),
    ("transformer_postln", "no_norm", "broken"),
    ("transformer_preln", "healthy", "healthy"),
    ("transformer_preln", "no_norm", "broken"),
    ("lstm_lm", "healthy", "healthy"),
    ("lstm_lm", "huge_init", "broken"),
    ("gru", "healthy", "healthy"),
    ("gru", "huge_init", "broken"),
    ("vgg", "healthy", "healthy"),
    ("vgg", "no_bn", "healthy"),
    ("vgg", "no_bn_default", "broken"),
    ("resnet", "healthy", "healthy"),
    ("resnet", "no_norm", "broken"),
    ("mlp_sigmoid", "healthy", "healthy"),
    ("mlp_sigmoid", "sigmoid", "broken"),
]


def build(family: str, variant: str = "healthy", seed: int = 0) -> Case:
    """The corpus case ``family`` / ``variant``."""
    return BUILDERS[family](variant, seed)
