"""The processes of a run: one, or several started by ``torchrun`` (DDP; NCCL on GPUs, gloo on CPUs).

    torchrun --nproc_per_node 4 -m s2s train configs/x.yaml

Every process trains on its shard of each epoch's batches; the main process (rank 0) alone
tokenizes first (the others read its cache), evaluates, logs and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from s2s.errors import ConfigError


@dataclass
class World:
    """The processes of a (possibly distributed) run; one process is the plain case."""

    rank: int
    size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def start(cls, device_choice: str) -> World:
        """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
        size = int(os.environ.get("WORLD_SIZE", "1"))
        use_cuda = device_choice == "cuda" or (device_choice == "auto" and torch.cuda.is_available())
        if device_choice == "cuda" and not torch.cuda.is_available():
            raise ConfigError("train.device: cuda, but no CUDA device is available (use auto or cpu)")
        rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
        if size > 1 and not dist.is_initialized():
            if use_cuda:
                torch.cuda.set_device(device)
            dist.init_process_group("nccl" if use_cuda else "gloo")
        if rank != 0:
            logging.getLogger("s2s").setLevel(logging.WARNING)
        return cls(rank, size, device)

    def wrap(self, model: torch.nn.Module, find_unused: bool) -> torch.nn.Module:
        if self.size == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)

    def no_sync(self, model: torch.nn.Module, skip: bool) -> contextlib.AbstractContextManager:
        """Skip the gradient all-reduce for all but the last batch of an update."""
        return model.no_sync() if skip and self.size > 1 else contextlib.nullcontext()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Run the block in the main process first, then in the others."""
        if self.size > 1 and not self.is_main:
            dist.barrier()
        yield
        if self.size > 1 and self.is_main:
            dist.barrier()

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is set in any process."""
        if self.size == 1:
            return flag
        value = torch.tensor(float(flag), device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value)

    def broadcast(self, obj: Any) -> Any:
        """The main process's ``obj``, in every process."""
        if self.size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def stop(self) -> None:
        """Leave the process group together: a process that tears gloo down while another still
        writes its last checkpoint may abort at exit ("terminate called without an active exception")."""
        if self.size > 1 and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
