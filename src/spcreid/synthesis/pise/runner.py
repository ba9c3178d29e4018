"""PISE texture transfer in process, registered as the ``pise`` synthesis backend.

Order of work, so that every input problem surfaces before the long parts: the generator checkpoint is
loaded (and the GPU checked) first, then keypoints of every source are detected in batches on the
device, then the copies are generated in batches and written temp-then-rename into the synthesis cache,
whose index is flushed every few batches, so an interrupted run resumes after the last flushed copy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from spcreid.data.parsing_labels import LABEL_NAMES, LOWER_CLOTHES, UPPER_CLOTHES
from spcreid.errors import SpcreidError
from spcreid.synthesis.base import Person, Synthesizer, load_person, register
from spcreid.synthesis.cache import save_png
from spcreid.synthesis.pise.inputs import (
    DEFAULT_FIT,
    check_fit,
    clothes_labels,
    from_pise_image,
    label_lookup,
    person_tensors,
)

BACKEND = "pise"
CLOTHES = (UPPER_CLOTHES, LOWER_CLOTHES)
FLUSH_EVERY = 25  # batches between index rewrites


def _region_names() -> tuple[str, ...]:
    return tuple(LABEL_NAMES[label] for label in CLOTHES)  # the order clothes_labels() returns them in


def region_summary(counts: dict[str, dict[str, int]]) -> str:
    return "; ".join(
        f"{name}: {c['donor']} copies from the donor, {c['source']} kept the source's (donor lacks it)"
        for name, c in counts.items()
    )


@register("pise")
class PiseSynthesizer(Synthesizer):
    """Clothing change by PISE's texture-transfer generator, called by :func:`adapter.texture_transfer`."""

    def __init__(
        self,
        pise_checkpoint: str | os.PathLike | None = None,
        vgg_weights: str | os.PathLike | None = None,
        keypoint_weights: str | os.PathLike | None = None,
        pise_network: str = "pise",
        pise_root: str | os.PathLike | None = None,
        device: str = "cuda",
        batch_size: int = 8,
        keypoint_min_size: int = 800,
        pise_label_map: str = "issue20",
        pise_fit: str = DEFAULT_FIT,
        pise_sha256: str | None = None,
        keypoint_sha256: str | None = None,
        keypoints_of: Callable[[Sequence[np.ndarray]], list[np.ndarray]] | None = None,
    ):
        """``keypoints_of(images) -> [(18, 2) (y, x)]`` replaces the R-CNN (tests); ``pise_checkpoint`` is
        ``latest_net_G.pth`` or the folder holding it."""
        label_lookup(pise_label_map)  # a bad name fails before anything is loaded
        self.fit = check_fit(pise_fit)
        if int(batch_size) < 1:
            raise SpcreidError(f"--pise-batch {batch_size}: must be at least 1")
        self.checkpoint = Path(pise_checkpoint) if pise_checkpoint else None
        if self.checkpoint is not None and self.checkpoint.is_dir():
            self.checkpoint = self.checkpoint / "latest_net_G.pth"
        self.vgg_weights, self.keypoint_weights = vgg_weights, keypoint_weights
        self.network, self.code_root = pise_network, pise_root
        self.device_name, self.batch_size = str(device), int(batch_size)
        self.keypoint_min_size = int(keypoint_min_size)
        self.label_map = pise_label_map
        self.pise_sha256, self.keypoint_sha256 = pise_sha256, keypoint_sha256
        self._keypoints_of = keypoints_of
        self._generator = None
        # Per clothing region, copies whose code came from the donor / stayed the source's (donor lacks it).
        self.region_counts = {name: {"donor": 0, "source": 0} for name in _region_names()}

    # ---- loading ------------------------------------------------------------------------------------------

    def generator(self):
        if self._generator is None:
            # lazy: torch, on first use
            from spcreid.device import resolve_device
            from spcreid.synthesis.pise.adapter import (
                CHECKPOINT_HINT,
                build_generator,
                load_generator,
            )

            if self.checkpoint is None:
                raise SpcreidError(f"PISE: no --pise-checkpoint given; {CHECKPOINT_HINT}")
            self.device = resolve_device(self.device_name, "PISE")
            model = build_generator(self.network, self.code_root)
            self._generator = load_generator(model, self.checkpoint, self.vgg_weights, self.pise_sha256).to(self.device)
        return self._generator

    def keypoints_of(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        if self._keypoints_of is None:
            # lazy: torchvision, on first use
            from spcreid.synthesis.pise.keypoints import KeypointDetector

            # The workflow's fetch step checked the published hash; a file given here is taken as it is.
            detector = KeypointDetector(
                self.keypoint_weights,
                sha256=self.keypoint_sha256,
                device=self.device_name,
                registered_as=None,
                min_size=self.keypoint_min_size,
                max_size=max(1333, self.keypoint_min_size),
            )
            self._keypoints_of = detector.openpose_batch
        return self._keypoints_of(images) if len(images) else []

    # ---- generation ---------------------------------------------------------------------------------------

    def generate(self, sources: Sequence[Person], keypoints: Sequence[np.ndarray], donors: Sequence[Person]):
        """One copy per (source, its keypoints, donor), each at its source's size, in one forward pass."""
        # lazy: torch
        import torch

        from spcreid.synthesis.pise.adapter import texture_transfer

        generator = self.generator()
        staged = [person_tensors(s.image, s.parsing, k, self.label_map, self.fit) for s, k in zip(sources, keypoints)]
        donor_staged = [person_tensors(d.image, d.parsing, None, self.label_map, self.fit) for d in donors]
        image, parsing, pose = (torch.stack(t).to(self.device) for t in zip(*staged))
        donor_image, donor_parsing, _ = zip(*donor_staged)
        with torch.inference_mode():
            out, given = texture_transfer(
                generator,
                image,
                pose,
                parsing,
                torch.stack(donor_image).to(self.device),
                torch.stack(donor_parsing).to(self.device),
                clothes_labels(self.label_map),
                return_given=True,
            )
        for name, column in zip(_region_names(), given.cpu().numpy().T):
            self.region_counts[name]["donor"] += int(column.sum())
            self.region_counts[name]["source"] += int((~column).sum())
        pixels = out.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return [from_pise_image(p, s.size, self.fit) for p, s in zip(pixels, sources)]

    def run_jobs(self, jobs: Sequence, out: Path, on_progress: Callable[[list[dict]], None]) -> int:
        """Make the copies of ``jobs`` (precompute.CopyJob) into the cache; returns the number of sources."""
        if not jobs:
            on_progress([])
            return 0
        self.generator()  # checkpoint and GPU problems before hours of keypoints
        self.keypoints_of([])  # and the detector's weights
        sources = sorted({job.source: job.source_parsing for job in jobs}.items())
        keypoints: dict[Path, np.ndarray] = {}
        for begin in tqdm(range(0, len(sources), self.batch_size), desc="keypoints", unit="batch"):
            chunk = sources[begin : begin + self.batch_size]
            images = [load_person(s, p).image for s, p in chunk]
            keypoints.update(zip([s for s, _ in chunk], self.keypoints_of(images)))
        rows: list[dict] = []
        try:
            for n, begin in enumerate(tqdm(range(0, len(jobs), self.batch_size), desc="PISE", unit="batch"), 1):
                batch = jobs[begin : begin + self.batch_size]
                people = [load_person(j.source, j.source_parsing) for j in batch]
                donors = [load_person(j.donor, j.donor_parsing) for j in batch]
                for job, copy in zip(batch, self.generate(people, [keypoints[j.source] for j in batch], donors)):
                    save_png(copy, Path(job.out_path))
                    rows.append(
                        {
                            "source": str(job.source),
                            "copy": job.copy,
                            "donor": str(job.donor),
                            "backend": BACKEND,
                            "path": str(job.out_path),
                        }
                    )
                if n % FLUSH_EVERY == 0:
                    on_progress(rows)
                    rows = []
        finally:
            on_progress(rows)  # also on errors and Ctrl-C, so a rerun resumes after the written copies
        print(f"PISE clothing codes, {out}: {region_summary(self.region_counts)}", file=sys.stderr)
        return len(sources)

    def synthesize(self, source: Person, donors: Sequence[Person]) -> list[np.ndarray]:
        keypoints = self.keypoints_of([source.image])[0]
        return self.generate([source] * len(donors), [keypoints] * len(donors), list(donors))
