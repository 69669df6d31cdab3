"""Which process of a Lightning DDP run this is, before and after its process group starts.

`train.devices` above 1 trains with Lightning's DDP: the stage's script runs once per device (Lightning starts the
other ranks by running the same command again, with `LOCAL_RANK` set). Every rank fits the same runs in the same
order, since each fit is a collective; only the main rank writes, so a stage's outputs are one set whatever the
number of devices.
"""

from __future__ import annotations

import os

import torch


def initialized() -> bool:
    """Whether a process group is running (a DDP fit has started in this process)."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank_and_world() -> tuple[int, int]:
    """This process's global rank and the number of ranks (0, 1 outside DDP)."""
    if initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def local_rank() -> int:
    """The device index of this rank on its machine: Lightning and torchrun set `LOCAL_RANK` before a rank starts."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Whether this process writes the stage's outputs: global rank 0, known even before the first fit.

    Rank 0 is the process the user started; the others are started with `LOCAL_RANK` (and `NODE_RANK` on other
    machines, or torchrun's `RANK`) already set, so they know who they are before the process group exists.
    """
    if initialized():
        return torch.distributed.get_rank() == 0
    if "RANK" in os.environ:
        return int(os.environ["RANK"]) == 0
    return local_rank() == 0 and int(os.environ.get("NODE_RANK", "0")) == 0


def sum_across_ranks(values: torch.Tensor) -> torch.Tensor:
    """`values` summed over every rank (itself outside DDP): each rank's share of a whole-set count, added up."""
    if not initialized():
        return values
    total = values.clone()
    torch.distributed.all_reduce(total, op=torch.distributed.ReduceOp.SUM)
    return total


def finish() -> None:
    """Wait for every rank, then end the process group: no rank exits while another still needs it."""
    if initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
