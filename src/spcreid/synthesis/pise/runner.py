"""Run PISE's texture transfer in its container and register it as the ``pise`` backend.

The default command is ``apptainer exec --nv`` on the image built from containers/pise, with the
staging folder, the checkpoint folder and the VGG19 weights bound to fixed paths inside it. Sites
that use Docker, a scheduler wrapper or a different image pass ``--pise-command`` with placeholders
instead. Everything is checked (weights present, container present) before any staging starts.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from spcreid.errors import SpcreidError
from spcreid.synthesis.base import Person, Synthesizer, load_image, register
from spcreid.synthesis.pise import require_weights
from spcreid.synthesis.pise.collect import collect
from spcreid.synthesis.pise.inputs import stage_jobs

CHECKPOINT_NAME = "latest_net_G.pth"
VGG_NAME = "vgg19-dcbb9e9d.pth"
# Paths inside the container; containers/pise patches PISE to read VGG19 from VGG_IN_CONTAINER.
DATAROOT_IN_CONTAINER = "/pise/dataroot"
RESULTS_IN_CONTAINER = "/pise/results"
CHECKPOINTS_IN_CONTAINER = "/pise/checkpoints"
VGG_IN_CONTAINER = f"/pise/{VGG_NAME}"
EXPERIMENT_NAME = "fashion"  # PISE loads <checkpoints_dir>/<name>/latest_net_G.pth
DEFAULT_TEMPLATE = (
    "apptainer exec --nv"
    f" --bind {{dataroot}}:{DATAROOT_IN_CONTAINER}"
    f" --bind {{results}}:{RESULTS_IN_CONTAINER}"
    f" --bind {{checkpoints}}:{CHECKPOINTS_IN_CONTAINER}/{EXPERIMENT_NAME}:ro"
    f" --bind {{vgg}}:{VGG_IN_CONTAINER}:ro"
    " {image} python /opt/PISE/test.py"
    f" --name={EXPERIMENT_NAME} --model=painet --gpu_ids=0 --phase=test --batchSize=1 --nThreads=1"
    f" --dataroot={DATAROOT_IN_CONTAINER} --checkpoints_dir={CHECKPOINTS_IN_CONTAINER}"
    f" --results_dir={RESULTS_IN_CONTAINER}"
)
PLACEHOLDERS = ("image", "staging", "dataroot", "results", "checkpoints", "vgg")
CHECKPOINT_HINT = (
    f"download PISE's texture-transfer checkpoint (Google Drive id 1fMFBIkU1AEQaa3vbhba3oV0rU5YSr7GR), "
    f"put {CHECKPOINT_NAME} in a folder and pass that folder as --pise-checkpoint"
)
VGG_HINT = f"pass --vgg-weights pointing at torchvision's {VGG_NAME}"


def build_command(
    template: str | None, image: str, staging: Path, dataroot: Path, results: Path, checkpoints: Path, vgg: Path
) -> list[str]:
    """The argv that runs PISE; ``template`` (None: apptainer default) gets shell-quoted paths."""
    values = {"image": image, "staging": staging, "dataroot": dataroot, "results": results,
              "checkpoints": checkpoints, "vgg": vgg}
    try:
        text = (template or DEFAULT_TEMPLATE).format(**{k: shlex.quote(str(v)) for k, v in values.items()})
    except (KeyError, IndexError) as exc:
        raise SpcreidError(f"--pise-command: unknown placeholder {exc}; available: {{{'}, {'.join(PLACEHOLDERS)}}}") from exc
    return shlex.split(text)


@register("pise")
class PiseSynthesizer(Synthesizer):
    """PISE texture transfer as a batch backend: stage inputs, run the container once, collect."""

    def __init__(
        self,
        pise_image: str | None = None,
        pise_checkpoint: str | os.PathLike | None = None,
        vgg_weights: str | os.PathLike | None = None,
        keypoint_weights: str | os.PathLike | None = None,
        pise_command: str | None = None,
        pise_label_map: str = "issue20",
        staging: str | os.PathLike | None = None,
        keypoints_of: Callable[[np.ndarray], np.ndarray] | None = None,
        checkpoint_sha256: str | None = None,
    ):
        self.image = pise_image
        self.checkpoint_dir = Path(pise_checkpoint) if pise_checkpoint else None
        self.vgg_weights = vgg_weights
        self.keypoint_weights = keypoint_weights
        self.command_template = pise_command
        self.label_map = pise_label_map
        self.staging = Path(staging) if staging else None
        self._keypoints_of = keypoints_of  # tests inject a stand-in for the R-CNN
        self.checkpoint_sha256 = checkpoint_sha256

    def check_ready(self) -> tuple[Path, Path]:
        """Fail early, naming the file, when weights or the container are missing."""
        if self.checkpoint_dir is None:
            raise SpcreidError(f"PISE: no --pise-checkpoint folder given; {CHECKPOINT_HINT}")
        checkpoint = require_weights(self.checkpoint_dir / CHECKPOINT_NAME, "PISE generator", CHECKPOINT_HINT,
                                     sha256=self.checkpoint_sha256)
        vgg = require_weights(self.vgg_weights, "PISE VGG19", VGG_HINT)
        if self.command_template is None:
            if not self.image:
                raise SpcreidError("PISE: no --pise-image given; build containers/pise/Apptainer.def into a .sif "
                                   "and pass it, or pass --pise-command")
            if "://" not in self.image and not Path(self.image).is_file():
                raise SpcreidError(f"PISE: container image {self.image} does not exist; build containers/pise/Apptainer.def")
        return checkpoint.parent, vgg

    def keypoints_of(self, image: np.ndarray) -> np.ndarray:
        if self._keypoints_of is None:
            from spcreid.synthesis.pise.keypoints import KeypointDetector

            detector = KeypointDetector(self.keypoint_weights)
            self._keypoints_of = detector.openpose
        return self._keypoints_of(image)

    def run_command(self, argv: list[str], log_path: Path) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(log_path, "w") as log:
                proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False)
        except FileNotFoundError as exc:
            raise SpcreidError(f"PISE: cannot run '{argv[0]}' (not on PATH); install apptainer on this GPU host "
                               "or pass --pise-command") from exc
        if proc.returncode != 0:
            tail = log_path.read_text(errors="replace").splitlines()[-15:]
            raise SpcreidError(f"PISE exited with status {proc.returncode}; full log {log_path}; last lines:\n"
                               + "\n".join(tail))

    def run_jobs(self, jobs: Sequence, out: Path, on_progress: Callable[[list[dict]], None]) -> int:
        """Stage ``jobs`` (precompute.CopyJob), run PISE once, collect into the cache; returns #sources."""
        if not jobs:
            on_progress([])
            return 0
        checkpoints, vgg = self.check_ready()
        staging = (self.staging or Path(out) / "pise-staging").resolve()
        dataroot, results = staging / "dataroot", staging / "results"
        for folder in (dataroot, results):  # stale files from an earlier batch would be mis-collected
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        stage_jobs(jobs, dataroot, self.keypoints_of, self.label_map)
        argv = build_command(self.command_template, self.image or "", staging, dataroot, results, checkpoints, vgg)
        self.run_command(argv, staging / "pise.log")
        on_progress(collect(dataroot, results))
        return len({job.source for job in jobs})

    def synthesize(self, source: Person, donors: Sequence[Person]) -> list[np.ndarray]:
        """One source through the batch pipeline in a temporary folder (slow; use run_jobs for many)."""
        from PIL import Image

        from spcreid.synthesis.precompute import CopyJob

        with tempfile.TemporaryDirectory(prefix="spcreid-pise-") as tmp:
            tmp = Path(tmp)
            people = [source, *donors]
            for i, person in enumerate(people):
                Image.fromarray(person.image).save(tmp / f"p{i}.png")
                Image.fromarray(person.parsing).save(tmp / f"p{i}_parsing.png")
            jobs = [CopyJob(tmp / "p0.png", tmp / "p0_parsing.png", k, tmp / f"p{k + 1}.png",
                            tmp / f"p{k + 1}_parsing.png", tmp / "out" / f"c{k}.png") for k in range(len(donors))]
            self.run_jobs(jobs, tmp, on_progress=lambda rows: None)
            return [load_image(job.out_path) for job in jobs]
