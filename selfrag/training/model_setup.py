"""Preparing the model to train: reflection tokens, pad token, LoRA (as the original
``finetune.py``); the model and tokenizer are loaded by :mod:`selfrag.offline_models`."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from selfrag.errors import SelfRagError
from selfrag.tokens import REFLECTION_TOKENS, add_reflection_tokens

logger = logging.getLogger(__name__)

# The original's LoRA targets (attention and MLP projections of a Llama block).
LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraSettings:
    """LoRA hyper-parameters (``--lora_rank 64 --lora_alpha 16 --lora_dropout 0.1``)."""

    rank: int = 64
    alpha: float = 16
    dropout: float = 0.1


def prepare_tokens(tokenizer, model, use_special_tokens: bool) -> list[int]:
    """Add the reflection tokens when asked, settle the pad token, and return the new-token ids.

    Returns:
        Ids of the reflection tokens (and an added ``<pad>``) whose embeddings must be trained;
        empty without ``use_special_tokens``.

    Raises:
        SelfRagError: the tokenizer has neither a pad nor an eos token.
    """
    new_ids: list[int] = []
    if use_special_tokens:
        before = len(tokenizer)
        if _is_zero3(model):
            added = _add_tokens_zero3(tokenizer, model)
        else:
            added = add_reflection_tokens(tokenizer, model)  # resizes embeddings if needed
        logger.info("reflection tokens: %d added to the tokenizer (%d -> %d)", added, before,
                    len(tokenizer))
        new_ids = [tokenizer.convert_tokens_to_ids(t) for t in REFLECTION_TOKENS]
        if added and tokenizer.pad_token_id is not None and tokenizer.pad_token_id >= before:
            new_ids.append(tokenizer.pad_token_id)
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise SelfRagError("the tokenizer has no pad token and no eos token: cannot pad batches")
        logger.warning("tokenizer has no pad token: padding with eos %r (padding is never trained)",
                       tokenizer.eos_token)
        tokenizer.pad_token = tokenizer.eos_token
    if _rows(model.get_input_embeddings().weight) < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model.config.pad_token_id = tokenizer.pad_token_id
    return new_ids


def _is_zero3(model) -> bool:
    """True when DeepSpeed ZeRO-3 partitioned the weights at load time (``zero.Init``)."""
    return any(hasattr(p, "ds_id") for p in model.parameters())


def _rows(weight) -> int:
    return getattr(weight, "ds_shape", weight.shape)[0]


def _add_tokens_zero3(tokenizer, model) -> int:
    """:func:`add_reflection_tokens` for ZeRO-3-partitioned weights.

    transformers resizes partitioned embeddings itself; the new rows are then initialised like
    :func:`add_reflection_tokens` does (mean of the sub-word rows) with the full tables gathered.
    """
    import deepspeed
    import torch

    pieces = {t: tokenizer(t, add_special_tokens=False)["input_ids"] for t in REFLECTION_TOKENS}
    added = add_reflection_tokens(tokenizer)
    old_rows = _rows(model.get_input_embeddings().weight)
    if len(tokenizer) <= old_rows:
        return added
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    tables = [model.get_input_embeddings().weight]
    output = model.get_output_embeddings()
    if output is not None and output.weight is not tables[0]:
        tables.append(output.weight)
    with deepspeed.zero.GatheredParameters(tables, modifier_rank=0), torch.no_grad():
        for table in tables:
            mean_row = table[:old_rows].mean(dim=0)
            for token, piece_ids in pieces.items():
                token_id = tokenizer.convert_tokens_to_ids(token)
                if token_id >= old_rows:
                    piece_ids = [i for i in piece_ids if i < old_rows]
                    table[token_id] = table[piece_ids].mean(dim=0) if piece_ids else mean_row
    return added


def wrap_lora(model, settings: LoraSettings, trainable_token_ids: list[int]):
    """Wrap the model with LoRA adapters; the reflection-token embedding rows are trained too.

    The original left ``embed_tokens`` frozen under LoRA, so the new tokens kept random rows
    (``embed_tokens`` was not in ``modules_to_save``). Here peft's ``trainable_token_indices``
    trains exactly those rows (and the tied output rows) while the rest of the embedding matrix
    stays frozen.
    """
    from peft import LoraConfig, get_peft_model

    targets = [m for m in LORA_TARGET_MODULES
               if any(name.endswith(m) for name, _ in model.named_modules())]
    config = LoraConfig(
        r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
        target_modules=targets or None, task_type="CAUSAL_LM",
        trainable_token_indices=sorted(set(trainable_token_ids)) or None,
    )
    model = get_peft_model(model, config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    logger.info("LoRA: %d of %d parameters trainable (%.2f%%), %d token rows trained", trainable,
                total, 100 * trainable / total, len(trainable_token_ids))
    return model


def train_top_layers(model, count: int | None) -> None:
    """Train only the top ``count`` decoder layers (with the final norm and the LM head); the
    layers below are frozen and no gradient is computed through them.

    A training step then costs one forward pass through every layer but a backward pass through
    ``count`` of them only: the cut the critic needs on CPU, where its full fine-tuning is the
    longest stage of the small-scale experiment. The embedding matrix still learns where it is
    the (tied) LM head, which holds the reflection tokens' output rows; its input side gets no
    gradient (its output is detached), and an untied input table is frozen. ``None`` (or every
    layer) changes nothing.

    Raises:
        SelfRagError: ``count`` is not between 1 and the number of decoder layers.
    """
    if count is None:
        return
    layers = model.get_decoder().layers
    if not 1 <= count <= len(layers):
        raise SelfRagError(f"trainable layers must be between 1 and {len(layers)} (the model's "
                           f"decoder layers), got {count}")
    if count == len(layers):
        return
    for layer in layers[:len(layers) - count]:
        layer.requires_grad_(False)
    embeddings = model.get_input_embeddings()
    output = model.get_output_embeddings()
    if output is None or output.weight is not embeddings.weight:
        embeddings.requires_grad_(False)
    else:
        embeddings.register_forward_hook(lambda module, args, result: result.detach())
    logger.info("training the top %d of %d decoder layers", count, len(layers))
