"""``spcreid bench synthesis``: copies per second of the built-in backend on real rendered toy people.

The sources and donors are rendered in memory by the toy generator (so no disk I/O is timed) and
donors are drawn by the production rule (``choose_donors``). Each repeat times the whole
``synthesize`` call for every source; the JSON reports each repeat and their median, both per
wall-clock second and per CPU second of this process (on a busy machine the latter is what one
free core would do).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from spcreid.errors import SpcreidError
from spcreid.synthesis.base import check_person, get_synthesizer
from spcreid.synthesis.donors import choose_donors
from spcreid.toy.generator import ToyConfig, plan_images, render_image, sample_cameras


def measure_synthesis(
    sources: int = 64,
    copies: int = 4,
    repeats: int = 3,
    height: int = 128,
    width: int = 64,
    seed: int = 0,
    backend: str = "parsing-swap",
) -> dict[str, Any]:
    if sources < 2 or copies < 1 or repeats < 1 or copies >= sources:
        raise SpcreidError("--sources must be >= 2, --copies in 1..sources-1 and --repeats >= 1")
    config = ToyConfig(
        seed=seed, identities=max(4, 2 * -(-sources // 8)), images_per_camera=2, height=height, width=width
    )
    config.validate()
    cameras = sample_cameras(seed)
    plan = [image for image in plan_images(config) if image.folder == "train"][:sources]
    people = [check_person(*render_image(config, image, cameras), where=image.stem) for image in plan]
    donors = choose_donors([image.stem for image in plan], copies, seed)
    synthesizer = get_synthesizer(backend)
    wall, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        for person, chosen in zip(people, donors):
            synthesizer.synthesize(person, [people[d] for d in chosen])
        wall.append(len(people) * copies / (time.perf_counter() - started))
        cpu.append(len(people) * copies / max(time.process_time() - started_cpu, 1e-9))
    return {
        "benchmark": "synthesis",
        "backend": backend,
        "image_size": [height, width],
        "sources": len(people),
        "copies_per_source": copies,
        "repeats": repeats,
        "copies_per_s": [round(v, 1) for v in wall],
        "copies_per_s_median": round(statistics.median(wall), 1),
        "copies_per_cpu_s": [round(v, 1) for v in cpu],
        "copies_per_cpu_s_median": round(statistics.median(cpu), 1),
    }
