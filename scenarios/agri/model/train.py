"""Train the agri event extractor: a tiny character-level causal transformer, exported to ONNX.

The model reads a camera caption and *generates* the event type character by character
(`weed_detected<eos>`), greedy; the runtime takes confidence from the generated tokens'
probabilities. Everything is seeded, so a rerun reproduces the shipped file's behaviour.
Needs torch (dev-only): `pip install torch==2.13.0`, then

    python -m edgetrace.scenarios.agri.model.train [--out DIR] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
from torch import nn

from edgetrace.scenarios.agri.captions import EVENT_TYPES, training_set

HERE = Path(__file__).resolve().parent
MAX_CAPTION = 64
MAX_OUTPUT = max(len(t) for t in EVENT_TYPES) + 1  # + <eos>
CONTEXT = MAX_CAPTION + 1 + MAX_OUTPUT
PAD, UNK, SEP, EOS = 0, 1, 2, 3
CHARS = "abcdefghijklmnopqrstuvwxyz0123456789 ,.:'-_/()"


def vocab() -> dict:
    table = {ch: i + 4 for i, ch in enumerate(CHARS)}
    return {"chars": table, "pad": PAD, "unk": UNK, "sep": SEP, "eos": EOS, "context": CONTEXT,
            "max_caption": MAX_CAPTION, "max_output": MAX_OUTPUT, "types": list(EVENT_TYPES),
            "size": len(CHARS) + 4}


def encode(text: str, table: dict) -> list[int]:
    return [table.get(ch, UNK) for ch in text.lower()[:MAX_CAPTION]]


class Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.heads = heads
        mask = torch.triu(torch.full((CONTEXT, CONTEXT), float("-inf")), diagonal=1)
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.ln1(x)
        q, k, v = self.qkv(h).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-2, -1)) / (d // self.heads) ** 0.5 + self.mask[:t, :t]
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(y)
        return x + self.mlp(self.ln2(x))


class Extractor(nn.Module):
    def __init__(self, size: int, d: int = 64, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.tok = nn.Embedding(size, d)
        self.pos = nn.Embedding(CONTEXT, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1]).unsqueeze(0)
        x = self.tok(ids) + self.pos(pos)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


def example(text: str, label: str, table: dict) -> tuple[list[int], list[int]]:
    """Input ids (padded to CONTEXT) and targets (-100 except on the output positions)."""
    prompt = [*encode(text, table), SEP]
    out = [table[ch] for ch in label] + [EOS]
    seq = prompt + out
    ids = seq + [PAD] * (CONTEXT - len(seq))
    targets = [-100] * CONTEXT
    for i in range(len(prompt) - 1, len(seq) - 1):
        targets[i] = seq[i + 1]
    return ids, targets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=20261124)
    args = ap.parse_args()
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    v = vocab()
    table = v["chars"]
    data = training_set()
    pairs = [example(c.text, c.event_type, table) for c in data]
    ids = torch.tensor([p[0] for p in pairs])
    targets = torch.tensor([p[1] for p in pairs])
    model = Extractor(v["size"])
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.steps)
    gen = torch.Generator().manual_seed(args.seed)
    started = time.perf_counter()
    for step in range(args.steps):
        batch = torch.randint(0, len(pairs), (64,), generator=gen)
        logits = model(ids[batch])
        loss = nn.functional.cross_entropy(logits.reshape(-1, v["size"]), targets[batch].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == args.steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}  {time.perf_counter() - started:.0f}s", flush=True)
    model.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "event_extractor.onnx"
    dummy = torch.zeros((1, CONTEXT), dtype=torch.long)
    torch.onnx.export(model, (dummy,), str(onnx_path), input_names=["input_ids"], output_names=["logits"],
                      opset_version=17, dynamo=False)
    (args.out / "vocab.json").write_text(json.dumps(v, indent=1, sort_keys=True) + "\n")
    print(f"params {params}, trained in {time.perf_counter() - started:.0f}s, wrote {onnx_path} "
          f"({onnx_path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
