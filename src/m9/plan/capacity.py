"""Capacity, budget and memory arithmetic for one point: what it will need, what it will produce, whether it can run.

Pure arithmetic over the typed config and what it is given (``Inputs``: the prompts' token lengths, the chip's
memory, the checkpoint's position limit), all read at the edge (``m9.plan.edge``). Imports no JAX, reads no
file: a rejected point costs microseconds. The formulas are the ones the experiment log validated against Levanter:

- pages per sequence (the log's estimate, used to size and validate ``max_pages``):
  ``ceil((prompt_len + max_new_tokens) / page_size)``, with each prompt's real token length
- pages the engine actually holds for a sequence that got ``g`` tokens: ``ceil((prompt_len + g - 1) / page_size)``
  (the last sampled token is never written to the cache)
- decode budget per ``generate`` call: ``floor(max_seq_len / max_rounds) * max_rounds * min(tpr, max_seqs)``; the
  prefill samples one more token per admitted sequence, and a budget short of the ask truncates sequences evenly.

Checks that need only the config run first (``early_refusals``); a point whose prompts would be too many to build
(``too_big_to_build``: a billion sequences, say) is refused with them alone, by arithmetic, before anything the
size of its workload is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from m9.plan.chips import memory_refusal, mesh_refusals
from m9.config import M9Config
from m9.plan.sizes import kv_cache_bytes, kv_cache_bytes_per_chip, state_bytes, weight_bytes, weight_bytes_per_chip


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Inputs:
    """What the planner is given beside the config, read at the edge."""

    prompt_lens: tuple[int, ...]
    """Tokens of each prompt of a round, as tokenized (synthetic: ``workload.prompt_len`` each)."""
    stop_sequences: int = 0
    """Stop sequences the workload sets (they make the predictions upper bounds)."""
    device_memory: Optional[int] = None
    """Bytes of memory of the one chip a point decodes on (None: unknown, not checked)."""
    max_position_embeddings: Optional[int] = None
    """The checkpoint's position limit, when it has one."""
    processes: Optional[int] = None
    """Processes the point runs as (SLURM tasks), when it runs: a global mesh needs one per host of the slice."""


@dataclass(frozen=True)
class Plan:
    """Sizes, predictions and verdict for one point (pages, tokens and bytes as named). Fields that depend on the
    prompts are None when the point was refused before its prompts were built (see ``early_refusals``)."""

    max_pages: Optional[int]
    """KV pages the engine is built with: ``engine.max_pages``, or the estimate when unset."""
    max_prefill_size: Optional[int]
    """Prefill buffer the engine is built with (tokens): ``engine.max_prefill_size``, or every prompt of the round
    (at least Levanter's default of one full sequence) when unset."""
    prompt_lens: tuple[int, ...]
    """Tokens of each prompt of a round, as planned."""
    pages_per_seq_est: Optional[int]
    """The log's per-sequence page estimate (of the longest prompt)."""
    pages_required_est: Optional[int]
    """The log's estimate for the whole round: what ``max_pages`` is validated against."""
    decode_budget: int
    """Tokens the decode loop can emit per ``generate`` call."""
    tokens_requested: int
    """num_seqs x max_new_tokens."""
    predicted_generated: int
    """Predicted ``round_total_generated``."""
    predicted_pages_in_use: Optional[int]
    """Predicted pages held after decode (what the page table will show)."""
    kv_cache_bytes: Optional[int]
    """KV cache size at ``max_pages``."""
    weight_bytes: int
    """Model parameters in the compute dtype."""
    kv_cache_bytes_per_chip: Optional[int]
    """One chip's part of the KV cache (``kv_head`` split over the model axis)."""
    weight_bytes_per_chip: int
    """One chip's part of the weights: its shard of each split array, and every array not split."""
    state_bytes: int
    """Engine buffers that grow with the slots and their length (decode state, page tables, prefill and logits)."""
    rejections: tuple[str, ...]
    """Reasons this point cannot run as configured; empty when it may run."""
    warnings: tuple[str, ...] = ()
    """Things that will not stop the run but change what it measures."""

    @property
    def accepted(self) -> bool:
        """True when the point may run."""
        return not self.rejections

    @property
    def sized(self) -> bool:
        """True when the plan sized the engine (its prompts were built), so that it could be built as planned."""
        return self.max_pages is not None and self.max_prefill_size is not None

    @property
    def truncation_predicted(self) -> bool:
        """True when the decode budget is short of the ask and sequences will be cut evenly."""
        return self.predicted_generated < self.tokens_requested


# --- the plan -------------------------------------------------------------------------------------------------


def _generated_total(cfg: M9Config, decode_budget: int) -> int:
    """Tokens a round generates: one per sequence from prefill, then the decode budget, capped at the ask."""
    return min(cfg.num_seqs * cfg.workload.max_new_tokens, cfg.num_seqs + decode_budget)


def _generated_per_seq(num_seqs: int, total: int) -> list[int]:
    """The tokens of a round spread evenly over its sequences, as the engine truncates."""
    base, extra = divmod(total, num_seqs)
    return [base + 1] * extra + [base] * (num_seqs - extra)


def decode_budget(cfg: M9Config) -> int:
    """Tokens the decode loop can emit per ``generate`` call."""
    e, s = cfg.engine, cfg.scheduler
    return (e.max_seq_len // s.max_rounds) * s.max_rounds * cfg.decode_width


def early_refusals(cfg: M9Config, device_memory: Optional[int], processes: Optional[int] = None) -> list[str]:
    """What is wrong with a point from its config alone: checked before its prompts are built, so that what would be
    built is known to be of a sound size (no more prompts than slots, synthetic prompts that fit a slot, a mesh the
    host has and the model can be split over, slots and their buffers that fit one chip)."""
    e, s, w = cfg.engine, cfg.scheduler, cfg.workload
    problems = []
    if e.max_seqs < cfg.num_seqs:
        problems.append(f"engine.max_seqs={e.max_seqs} < {cfg.num_seqs} sequences per round (prompts x n_generations)")
    if e.imputed_max_seqs_in_prefill < cfg.imputed_num_prompts:
        problems.append(
            f"engine.max_seqs_in_prefill={e.imputed_max_seqs_in_prefill} must cover all prompts per round "
            f"({cfg.imputed_num_prompts}); the engine would silently leave the rest unserved")
    if w.prompt_source == "synthetic" and e.max_seq_len < w.prompt_len + w.max_new_tokens:
        problems.append(f"engine.max_seq_len={e.max_seq_len} < longest prompt + max_new_tokens = {w.prompt_len} + "
                        f"{w.max_new_tokens}")
    if s.max_rounds > e.max_seq_len:
        problems.append(f"scheduler.max_rounds={s.max_rounds} > engine.max_seq_len={e.max_seq_len}: the decode loop "
                        "would never run")
    mesh = mesh_refusals(cfg, processes)
    if mesh:
        return problems + mesh  # a mesh that cannot be built has no per-chip share to check
    pages, exact = _pages_before_inputs(cfg)
    return problems + memory_refusal(cfg, device_memory, pages, _prefill_before_inputs(cfg), lower_bound=not exact)


def _prefill_before_inputs(cfg: M9Config) -> int:
    """The prefill buffer as far as the config alone says: ``engine.max_prefill_size``, else at least Levanter's
    default of one full sequence (m9 widens it to every prompt of the round once their lengths are known)."""
    e = cfg.engine
    return e.max_prefill_size if e.max_prefill_size is not None else e.page_size * e.pages_per_seq


def _pages_before_inputs(cfg: M9Config) -> tuple[int, bool]:
    """KV pages as far as the config alone says, and whether that is exact: ``engine.max_pages``, the estimate for
    synthetic prompts (their length is configured), else a lower bound (one token per text prompt)."""
    e, w = cfg.engine, cfg.workload
    if e.max_pages is not None:
        return e.max_pages, True
    synthetic = w.prompt_source == "synthetic"
    return cfg.num_seqs * _ceil_div((w.prompt_len if synthetic else 1) + w.max_new_tokens, e.page_size), synthetic


BUILDABLE_TOKENS = 2**24
"""The most synthetic prompt tokens built for one point: far beyond any real round, far below what would exhaust
the planning process."""
BUILDABLE_PROMPTS = 2**16
"""The most text prompts built (tokenized) for one point."""


def too_big_to_build(cfg: M9Config) -> Optional[str]:
    """Why the point's prompts are too many to build in the planning process, or None (then they are built, and
    planned from their real lengths, whatever else the plan says)."""
    w, n = cfg.workload, cfg.imputed_num_prompts
    if w.prompt_source == "synthetic" and n * w.prompt_len > BUILDABLE_TOKENS:
        return (f"workload.num_prompts={n} x workload.prompt_len={w.prompt_len} = {n * w.prompt_len} prompt tokens > "
                f"the {BUILDABLE_TOKENS} m9 builds for one point")
    if w.prompt_source != "synthetic" and n > BUILDABLE_PROMPTS:
        return f"workload.num_prompts={n} text prompts > the {BUILDABLE_PROMPTS} m9 tokenizes for one point"
    return None


def unsized(cfg: M9Config, reasons: list[str]) -> Plan:
    """The plan of a point refused before its prompts were built (``too_big_to_build``): nothing sized from them."""
    e, budget = cfg.engine, decode_budget(cfg)
    pages = e.max_pages
    return Plan(max_pages=pages, max_prefill_size=e.max_prefill_size, prompt_lens=(), pages_per_seq_est=None,
                pages_required_est=None, decode_budget=budget,
                tokens_requested=cfg.num_seqs * cfg.workload.max_new_tokens,
                predicted_generated=_generated_total(cfg, budget), predicted_pages_in_use=None,
                kv_cache_bytes=kv_cache_bytes(cfg, pages) if pages is not None else None,
                weight_bytes=weight_bytes(cfg),
                kv_cache_bytes_per_chip=kv_cache_bytes_per_chip(cfg, pages) if pages is not None else None,
                weight_bytes_per_chip=weight_bytes_per_chip(cfg),
                state_bytes=state_bytes(cfg, _prefill_before_inputs(cfg)), rejections=tuple(reasons))


def make_plan(cfg: M9Config, inputs: Inputs) -> Plan:
    """Plan one point: size what was left unset, predict pages and tokens, and list every reason it cannot run."""
    e, s, w = cfg.engine, cfg.scheduler, cfg.workload
    processes = inputs.processes
    problems = early_refusals(cfg, None, processes)  # memory is checked below, with the real page count
    lens, n_gen = inputs.prompt_lens, w.n_generations
    seq_lens = [n for n in lens for _ in range(n_gen)]  # clones follow their prompt
    prompt_tokens, longest = sum(lens), max(lens)
    # Unset, the prefill buffer holds every prompt of the round (as max_pages holds every sequence): Levanter's own
    # default is one full sequence, which silently leaves prompts unserved once they outgrow it.
    prefill_size = e.max_prefill_size if e.max_prefill_size is not None else max(
        _prefill_before_inputs(cfg), e.page_size * _ceil_div(prompt_tokens, e.page_size))
    pages_per_seq = [_ceil_div(n + w.max_new_tokens, e.page_size) for n in seq_lens]
    pages_per_seq_est, pages_required = max(pages_per_seq), sum(pages_per_seq)
    max_pages = e.max_pages if e.max_pages is not None else pages_required
    budget = decode_budget(cfg)
    generated = _generated_total(cfg, budget)
    per_seq = _generated_per_seq(len(seq_lens), generated)
    predicted_pages = sum(_ceil_div(n + g - 1, e.page_size) for n, g in zip(seq_lens, per_seq))
    tokens_requested = cfg.num_seqs * w.max_new_tokens
    text = w.prompt_source != "synthetic"
    prompt_text = f"{describe(lens)} (workload.{w.prompt_source} as tokenized)" if text else f"{w.prompt_len}"

    if max_pages < pages_required:
        per = (f"ceil(({prompt_text}+{w.max_new_tokens})/{e.page_size})={pages_per_seq_est} pages"
               if min(pages_per_seq) == pages_per_seq_est else
               f"ceil((prompt+{w.max_new_tokens})/{e.page_size}) pages, prompts of {prompt_text} tokens")
        problems.append(f"engine.max_pages={max_pages} is too small for {cfg.num_seqs} sequences x {per} "
                        f"(est. {pages_required} pages needed)")
    if prefill_size < prompt_tokens:
        problems.append(f"engine.max_prefill_size={prefill_size} < {cfg.imputed_num_prompts} prompts of {prompt_text} "
                        f"tokens = {prompt_tokens}; the engine would silently leave prompts unserved")
    if text and e.max_seq_len < longest + w.max_new_tokens:
        problems.append(f"engine.max_seq_len={e.max_seq_len} < longest prompt + max_new_tokens = {longest} + "
                        f"{w.max_new_tokens} (workload.{w.prompt_source} as tokenized)")
    warnings: list[str] = []
    if not problems and generated < tokens_requested:
        short = (f"decode budget floor({e.max_seq_len}/{s.max_rounds})*{s.max_rounds}*min("
                 f"{cfg.imputed_max_tokens_per_round},{e.max_seqs})={budget} + {cfg.num_seqs} prefill tokens < "
                 f"{cfg.num_seqs} x {w.max_new_tokens} = {tokens_requested}: generation will plateau at {generated} "
                 "tokens")
        (problems if w.length_fixed else warnings).append(short)
    if w.n_rounds < 2:  # round 0 compiles; the engine's state is laid out so that round 1 runs the same code
        warnings.append(f"workload.n_rounds={w.n_rounds}: the only round includes compilation, except where a warm "
                        "worker compiled this shape before; throughput compares across points from n_rounds=2")
    if n_gen > 1:
        warnings.append("page predictions assume no prompt-page sharing between clones (n_generations > 1)")
    if inputs.stop_sequences:
        warnings.append(f"{inputs.stop_sequences} stop sequences: a sequence may stop early, so the predicted "
                        "tokens and pages are upper bounds")
    limit = inputs.max_position_embeddings
    if limit is not None and e.max_seq_len > limit:
        warnings.append(f"engine.max_seq_len={e.max_seq_len} > the checkpoint's max_position_embeddings={limit}")
    if not mesh_refusals(cfg, processes):  # a mesh that cannot be built has no per-chip share
        problems += memory_refusal(cfg, inputs.device_memory, max_pages, prefill_size, lower_bound=False)
    return Plan(
        max_pages=max_pages,
        max_prefill_size=prefill_size,
        prompt_lens=lens,
        pages_per_seq_est=pages_per_seq_est,
        pages_required_est=pages_required,
        decode_budget=budget,
        tokens_requested=tokens_requested,
        predicted_generated=generated,
        predicted_pages_in_use=predicted_pages,
        kv_cache_bytes=kv_cache_bytes(cfg, max_pages),
        weight_bytes=weight_bytes(cfg),
        kv_cache_bytes_per_chip=kv_cache_bytes_per_chip(cfg, max_pages),
        weight_bytes_per_chip=weight_bytes_per_chip(cfg),
        state_bytes=state_bytes(cfg, prefill_size),
        rejections=tuple(problems),
        warnings=tuple(warnings),
    )


def describe(lengths: tuple[int, ...]) -> str:
    """``16`` when every prompt has that length, else ``9-14``; ``-`` for none."""
    if not lengths:
        return "-"
    low, high = min(lengths), max(lengths)
    return str(low) if low == high else f"{low}-{high}"
